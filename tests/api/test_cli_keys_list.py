"""``brandloop keys list`` during a key rotation (docs/runbook.md, "Rotate keys"): two keys of
one principal and role are told apart in the table by their name and when each was made."""

from __future__ import annotations

import json

import pytest
from rich.cells import cell_len

from brandloop.settings import Settings
from tests.api.test_cli import run_cli


def test_the_keys_table_tells_a_rotated_pair_apart(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    made = []
    for name in ("ci 2026-q3", "ci 2026-q4"):
        create = ["keys", "create", "--tenant", "acme", "--role", "creator", "--json"]
        code, out, err = run_cli(capsys, *create, "--principal", "ci-bot", "--name", name)
        assert code == 0, err
        made.append(json.loads(out)["id"])
    code, out, err = run_cli(capsys, "keys", "list", "--tenant", "acme", "--json")
    assert code == 0, err
    listed = {row["id"]: row for row in json.loads(out)}

    code, table, err = run_cli(capsys, "keys", "list", "--tenant", "acme")
    assert code == 0, err
    assert all(cell_len(line) <= 80 for line in table.splitlines()), table
    lines = table.splitlines()
    for key_id, name in zip(made, ("ci 2026-q3", "ci 2026-q4"), strict=True):
        at = next(i for i, line in enumerate(lines) if key_id in line)
        assert name in lines[at], table
        created = listed[key_id]["created_at"][:19].replace("T", " ")
        assert created in lines[at + 1], table  # under its id
    assert table.index(made[0]) < table.index(made[1])  # oldest first

    code, table, err = run_cli(capsys, "keys", "list", "--tenant", "acme", "--wide")
    assert code == 0, err
    for key_id in made:
        line = next(line for line in table.splitlines() if key_id in line)
        assert listed[key_id]["created_at"][:19] in line and listed[key_id]["name"] in line
