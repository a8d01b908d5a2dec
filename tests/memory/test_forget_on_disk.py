"""`brandloop memory forget` on the on-disk store: the forgotten text cannot be read back from
any file of the data dir's Chroma (it was left in four places of chroma.sqlite3's free space:
metadata, string index, write-ahead log, full-text tables)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.settings import Settings
from tests.memory.test_memory_cli import ACME, cli

SECRET = b"quokkastein"


def _copies(chroma_dir: Path) -> int:
    return sum(p.read_bytes().lower().count(SECRET) for p in chroma_dir.rglob("*") if p.is_file())


def _add(capsys: pytest.CaptureFixture[str], text: str) -> str:
    code, out, err = cli(capsys, "memory", "add", text, "--brand", "Acme Coffee", "--json")
    assert code == 0, err
    return str(json.loads(out)["id"])


def test_forget_leaves_no_copy_of_the_text_in_the_chroma_files(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    cli(capsys, "brands", "add", ACME)
    for i in range(3):
        _add(capsys, f"filler note {i}: warm wood and soft light")
    secret = _add(capsys, "Ms Winifred Quokkastein prefers pale roasts")
    chroma_dir = settings.resolved_chroma_path
    assert _copies(chroma_dir) > 0  # the check can see the text while it is stored

    code, out, err = cli(
        capsys, "memory", "forget", "--brand", "Acme Coffee", "--id", secret, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["deleted"] == 1
    assert _copies(chroma_dir) == 0

    # the memory goes on working in the same process and in a new one
    later = _add(capsys, "Mr Quokkastein's cousin likes dark roasts")
    code, out, err = cli(
        capsys, "memory", "search", "soft light", "--brand", "Acme Coffee", "--json"
    )
    assert code == 0, err
    hits = json.loads(out)
    assert {h["id"] for h in hits} >= {later} and secret not in {h["id"] for h in hits}
    assert len([h for h in hits if h["text"].startswith("filler")]) == 3

    code, out, err = cli(
        capsys, "memory", "forget", "--brand", "Acme Coffee", "--before", "2999-01-01", "--json"
    )
    assert code == 0 and json.loads(out)["deleted"] == 4, err
    assert _copies(chroma_dir) == 0
