"""``--debug`` and ``BRANDLOOP_DEBUG``: the traceback of an error, then its usual one line;
without them, only the one line."""

from __future__ import annotations

import pytest

from brandloop.api.cli import main
from brandloop.settings import Settings

MISSING = "brandloop: error: unknown run 'run_missing'"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    return int(exc.value.code or 0), capsys.readouterr().err


def test_one_line_without_debug_and_the_traceback_with_it(
    capsys: pytest.CaptureFixture[str], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_cli(capsys, "runs", "show", "run_missing") == (2, MISSING + "\n")

    code, err = run_cli(capsys, "--debug", "runs", "show", "run_missing")
    assert code == 2 and err.rstrip("\n").splitlines()[-1] == MISSING
    assert "Traceback (most recent call last):" in err and "NotFoundError" in err

    assert run_cli(capsys, "runs", "show", "run_missing") == (2, MISSING + "\n")  # per run
    monkeypatch.setenv("BRANDLOOP_DEBUG", "1")
    code, err = run_cli(capsys, "runs", "show", "run_missing")
    assert code == 2 and "Traceback (most recent call last):" in err
    assert err.rstrip("\n").splitlines()[-1] == MISSING


@pytest.mark.databases("sqlite")
def test_an_internal_error_shows_its_traceback_only_in_debug_mode(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    """SQLite only: the internal error is made by writing garbage over the embedded file."""
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "brandloop.db").write_bytes(b"this is not a database" * 100)
    code, err = run_cli(capsys, "brands", "list")
    assert code == 1 and err.startswith("brandloop: error: internal error: DatabaseError")
    assert err.count("\n") == 1
    code, err = run_cli(capsys, "--debug", "brands", "list")
    assert code == 1 and "Traceback (most recent call last):" in err
    assert err.rstrip("\n").splitlines()[-1].startswith("brandloop: error: internal error:")
