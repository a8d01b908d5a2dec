"""Brand memory that cannot be used at all - a Chroma server that is down, an on-disk store
whose file is damaged - through the CLI: a run goes on without memory, a memory command stops
with one line naming Chroma and exit 7 (it was exit 1, "internal error", for both)."""

from __future__ import annotations

import json

import pytest

from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.agent.helpers import add_acme
from tests.memory.faults import corrupt_embedded_store, dead_port
from tests.memory.test_memory_cli import brand_id_of, cli

RUN = ["generate", "a cup of coffee", "--brand", "Acme Coffee", "--size", "128x128", "--json"]


def _run_goes_on_without_memory(capsys: pytest.CaptureFixture[str], seed: int, where: str) -> None:
    code, out, err = cli(capsys, *RUN, "--seed", str(seed))
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "succeeded" and result["images"]
    (recall,) = [d for d in result["decisions"] if d["node"] == "recall"]
    assert recall["action"] == "unavailable"
    assert where in recall["reason"] and "\n" not in recall["reason"]


def _memory_commands_stop_with_exit_7(capsys: pytest.CaptureFixture[str], where: str) -> None:
    for argv in (
        ["memory", "search", "morning light", "--brand", "Acme Coffee"],
        ["memory", "add", "never neon", "--brand", "Acme Coffee"],
        ["memory", "forget", "--brand", "Acme Coffee", "--before", "2999-01-01"],
    ):
        code, out, err = cli(capsys, *argv)
        assert code == 7, (argv, err)
        assert err.count("\n") == 1 and err.startswith(
            "brandloop: error: brand memory is unavailable"
        )
        assert where in err and "internal error" not in err and not out


def test_a_chroma_server_that_is_down_stops_no_run_and_memory_commands_say_so(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    db: Database,
    seed: int,
) -> None:
    add_acme(settings, db)
    port = dead_port()
    monkeypatch.setenv("BRANDLOOP_CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("BRANDLOOP_CHROMA_PORT", str(port))
    get_settings.cache_clear()
    where = f"Chroma server at 127.0.0.1:{port} cannot be reached"
    _run_goes_on_without_memory(capsys, seed, where)
    _memory_commands_stop_with_exit_7(capsys, where)


def test_a_corrupt_embedded_store_stops_no_run_and_memory_commands_say_so(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database, seed: int
) -> None:
    add_acme(settings, db)
    path = corrupt_embedded_store(settings, brand_id_of(settings, "Acme Coffee"))
    where = f"on-disk Chroma store {path} cannot be read"
    _run_goes_on_without_memory(capsys, seed, where)
    _memory_commands_stop_with_exit_7(capsys, where)


@pytest.mark.parametrize("where", ["a file", "below a file"])
def test_a_chroma_path_that_cannot_be_a_directory_stops_no_run_and_commands_say_so(
    where: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    db: Database,
    seed: int,
) -> None:
    """An outside tester's BRANDLOOP_CHROMA_PATH of a file, or below one: memory commands and
    generate were exit 1, "internal error: FileExistsError"."""
    add_acme(settings, db)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    blocker = settings.data_dir / "not-a-directory"
    blocker.write_text("a file\n")
    path = blocker if where == "a file" else blocker / "chroma"
    monkeypatch.setenv("BRANDLOOP_CHROMA_PATH", str(path))
    get_settings.cache_clear()
    reason = "the on-disk Chroma store cannot be opened"
    _run_goes_on_without_memory(capsys, seed, reason)
    _memory_commands_stop_with_exit_7(capsys, "BRANDLOOP_CHROMA_PATH")
    code, _, err = cli(capsys, "memory", "notes", "--brand", "Acme Coffee")
    assert code == 7 and reason in err and str(path) not in err, err
