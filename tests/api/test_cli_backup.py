"""The embedded data dir backed up the way docs/runbook.md ("The embedded data dir") says while
it is in use (SQLite's online backup of each database, then the files) restores: the copy
alone answers ``runs show``, ``verify`` and ``runs reproduce`` as the original did."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, BRIEF, run_cli


def _online_backup(source: Path, target: Path) -> None:
    """The runbook's command for one database file (its Python form without ``sqlite3``)."""
    if shutil.which("sqlite3"):
        subprocess.run(["sqlite3", str(source), f".backup '{target}'"], check=True)
        return
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


@pytest.mark.databases("sqlite")
def test_a_data_dir_backed_up_as_documented_restores(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out_dir = tmp_path / "out"
    generate = ["generate", BRIEF, "--brand", str(BRANDS / "acme-coffee.yaml"), "--n", "1"]
    code, _, err = run_cli(
        capsys, *generate, "--size", "256x256", "--seed", "5", "--out", str(out_dir)
    )
    assert code == 0, err
    run_id = json.loads((out_dir / "receipt.json").read_text())["run"]["run_id"]
    images = sorted(map(str, out_dir.glob("*.png")))
    code, shown, err = run_cli(capsys, "runs", "show", run_id, "--json")
    assert code == 0, err
    code, verified, err = run_cli(capsys, "verify", *images)
    assert code == 0, err

    # the database files are open (as under a running server) while they are backed up
    backup = tmp_path / "backup"
    backup.mkdir()
    with (
        sqlite3.connect(data_dir / "brandloop.db"),
        sqlite3.connect(data_dir / "checkpoints.sqlite"),
    ):
        _online_backup(data_dir / "brandloop.db", backup / "brandloop.db")
        _online_backup(data_dir / "checkpoints.sqlite", backup / "checkpoints.sqlite")
    for name in ("artifacts", "c2pa"):
        shutil.copytree(data_dir / name, backup / name, symlinks=True)
    shutil.copytree(data_dir / "chroma", backup / "chroma")  # taken with nothing running

    data_dir.rename(tmp_path / "gone")  # the original is lost
    monkeypatch.setenv("BRANDLOOP_DATA_DIR", str(backup))
    get_settings.cache_clear()
    code, restored, err = run_cli(capsys, "runs", "show", run_id, "--json")
    assert code == 0, err
    assert json.loads(restored) == json.loads(shown)
    code, out, err = run_cli(capsys, "verify", *images)
    assert code == 0, err
    assert out == verified
    code, out, err = run_cli(capsys, "runs", "reproduce", run_id, "--json")
    assert code == 0, err
    assert "byte-identical" in out, out
