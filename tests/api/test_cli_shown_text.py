"""What the CLI prints of stored text, and how it ends when its reader leaves (outside
tester): a brief or a note holding terminal control sequences (``ESC [2J`` clears the screen)
is shown with them written out, never sent; a run is found by an image's sha256 in either case;
`... | head -1` ends the command with exit 141 (SIGPIPE's), quietly, not exit 1 "internal
error"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.test_cli import BRANDS, run_cli

ESCAPES = "\x1b[2J\x1b[31m"


def _generate(capsys: pytest.CaptureFixture[str], tmp_path: Path, brief: str) -> dict:
    code, out, err = run_cli(
        capsys, "generate", brief, "--brand", str(BRANDS / "acme-coffee.yaml"), "--size",
        "64x64", "--seed", "7", "--no-memory", "--json", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code in (0, 4), err
    return dict(json.loads(out))


def test_control_characters_of_stored_text_are_written_out_never_sent(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database, tmp_path: Path
) -> None:
    run = _generate(capsys, tmp_path, f"a cup{ESCAPES} with escape")
    for argv in (["runs", "list", "--wide"], ["runs", "show", run["run_id"]]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 0, err
        assert "\x1b" not in out and "\\x1b[2J" in out, (argv, out)
    code, _, err = run_cli(capsys, "memory", "add", f"{ESCAPES}red note", "--brand", "Acme Coffee")
    assert code == 0, err
    code, out, err = run_cli(capsys, "memory", "notes", "--brand", "Acme Coffee", "--wide")
    assert code == 0 and "\x1b" not in out and "\\x1b[31mred note" in out, out


def test_a_run_is_found_by_an_upper_case_sha256(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database, tmp_path: Path
) -> None:
    run = _generate(capsys, tmp_path, "a cup on a saucer")
    if not run["images"]:
        pytest.skip("this seed accepted no image")  # a fixed seed: it does
    sha = run["images"][0]["sha256"]
    code, out, err = run_cli(capsys, "runs", "show", sha.upper(), "--json")
    assert code == 0, err
    assert json.loads(out)["run"]["run_id"] == run["run_id"]


def test_a_reader_that_leaves_ends_the_command_with_exit_141_quietly(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database, tmp_path: Path
) -> None:
    run = _generate(capsys, tmp_path, "a cup on a saucer")
    env = {**os.environ, "BRANDLOOP_DATA_DIR": str(settings.data_dir)}
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads: the first write breaks the pipe
    done = subprocess.run(
        [sys.executable, "-c", "from brandloop.api.cli import main; main()", "runs", "show",
         run["run_id"]],
        stdout=writer, stderr=subprocess.PIPE, env=env, timeout=120, check=False,
    )  # fmt: skip
    os.close(writer)
    assert (done.returncode, done.stderr) == (141, b""), done.stderr
