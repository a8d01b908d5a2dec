"""Settings that decide where data lives (``BRANDLOOP_DATABASE_URL``, ``BRANDLOOP_DATA_DIR``):
a malformed or unusable one is one line naming its variable, exit 2, never the URL's password,
and nothing is created or stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandloop.api.cli import main
from brandloop.settings import get_settings


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


PASSWORD = "hunter2-s3cret"


@pytest.mark.databases("sqlite")
@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "BRANDLOOP_DATABASE_URL",
            f"garbage://admin:{PASSWORD}@db.example/brandloop",
            "BRANDLOOP_DATABASE_URL: unknown database kind 'garbage'",
        ),
        (
            "BRANDLOOP_DATABASE_URL",
            f"not a url {PASSWORD}",
            "BRANDLOOP_DATABASE_URL: not a database URL",
        ),
        ("BRANDLOOP_DATA_DIR", "/proc/brandloop-x", "BRANDLOOP_DATA_DIR: '/proc/brandloop-x'"),
        ("BRANDLOOP_DATA_DIR", "{file}", "is a file, not a directory"),
        ("BRANDLOOP_DATA_DIR", "{file}/sub", "which is a file, not a directory"),
    ],
    ids=["unknown-kind", "not-a-url", "proc", "a-file", "below-a-file"],
)
def test_an_unusable_database_url_or_data_dir_names_its_variable(
    capsys: pytest.CaptureFixture[str],
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    message: str,
) -> None:
    """SQLite only: the setting is refused before any database is opened."""
    file = tmp_path / "a-file"
    file.write_text("not a directory")
    monkeypatch.setenv(variable, value.replace("{file}", str(file)))
    get_settings.cache_clear()
    code, out, err = run_cli(capsys, "runs", "list")
    assert (code, out) == (2, ""), err
    assert err.count("\n") == 1 and err.startswith("brandloop: error: "), err
    assert message in err and "internal error" not in err
    assert PASSWORD not in err
    assert file.read_text() == "not a directory"


# --------------------------------------------------------------------------- the LLM writer

KIT = str(Path(__file__).resolve().parents[2] / "examples" / "brands" / "acme-coffee.yaml")

WRITER = {
    "provider unknown": (
        {"BRANDLOOP_WRITER_PROVIDER": "bogus"},
        "BRANDLOOP_WRITER_PROVIDER: Input should be 'openai' or 'ollama'",
    ),
    "temperature nan": (
        {"BRANDLOOP_WRITER_PROVIDER": "openai", "BRANDLOOP_WRITER_MODEL": "m",
         "BRANDLOOP_WRITER_TEMPERATURE": "nan"},
        "BRANDLOOP_WRITER_TEMPERATURE: Input should be a finite number",
    ),
    "model missing": (
        {"BRANDLOOP_WRITER_PROVIDER": "openai"},
        "BRANDLOOP_WRITER_MODEL: is required with BRANDLOOP_WRITER_PROVIDER",
    ),
    "timeout zero": (
        {"BRANDLOOP_WRITER_PROVIDER": "openai", "BRANDLOOP_WRITER_MODEL": "m",
         "BRANDLOOP_WRITER_TIMEOUT_S": "0"},
        "BRANDLOOP_WRITER_TIMEOUT_S: Input should be greater than 0",
    ),
    "base url without scheme": (
        {"BRANDLOOP_WRITER_PROVIDER": "openai", "BRANDLOOP_WRITER_MODEL": "m",
         "BRANDLOOP_WRITER_BASE_URL": "127.0.0.1:8000/v1"},
        "BRANDLOOP_WRITER_BASE_URL: must be an http:// or https:// URL with a host (it has no "
        "scheme",
    ),
}  # fmt: skip


@pytest.mark.databases("sqlite")
@pytest.mark.parametrize("case", sorted(WRITER))
@pytest.mark.parametrize(
    "argv",
    [["runs", "list"], ["generate", "a cup", "--brand", KIT, "--size", "256x256"]],
    ids=["runs-list", "generate"],
)
def test_a_malformed_writer_setting_is_refused_at_settings_load_in_one_line(
    capsys: pytest.CaptureFixture[str],
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    argv: list[str],
) -> None:
    """Every command refuses it (not only a run), with nothing on stderr before the one line
    (no progress bar) and nothing stored. SQLite only: refused before any database is opened."""
    variables, message = WRITER[case]
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    code, out, err = run_cli(capsys, *argv)
    assert (code, out) == (2, ""), err
    assert err == f"brandloop: error: {message}\n" or (
        err.startswith(f"brandloop: error: {message}") and err.count("\n") == 1
    ), err
    assert not (data_dir / "brandloop.db").exists()
