"""The minors line at the door of the CLI, on SQLite and PostgreSQL: ``brandloop generate``
(its template's render too) and ``brandloop campaign run`` (any asset) refuse a brief that
crosses it before anything runs or is stored - exit 3, one line on stderr naming
``sexual/minors``, nothing on stdout, no run, no spend, no budget - with an audit entry by
``cli`` that keeps no text; a legal brief right after runs. They used to store the run and
refuse it at intake (a campaign ran its other assets first)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import get_settings
from brandloop.tools.moderation.minors import AUDIT_ACTION
from tests.api.test_cli import BRANDS, data_snapshot, run_cli

CROSSING = "a kid in lingerie by the harbour"
#: a minor, harmless on its own; across the line once the template adds a pose to it
MINOR = "a ten year old girl at the beach"
POSE = "{{ brief }}, in a sultry, seductive pose, {{ palette_clause }}"
LEGAL = "a steaming cup of coffee on an oak table"


def _generate(
    capsys: pytest.CaptureFixture[str], brief: str, out: Path, *more: str
) -> tuple[int, str, str]:
    return run_cli(
        capsys,
        "generate",
        brief,
        "--brand",
        "Acme Coffee",
        "--size",
        "64x64",
        "--budget",
        "0.05",
        "--out",
        str(out),
        "--json",
        *more,
    )


def _refusals() -> list[Any]:
    database = Database.from_settings(get_settings())
    try:
        with database.session() as session:
            return [
                (r.actor, r.subject_type, r.subject_id, r.detail)
                for r in crud.list_audit(session, tenant=get_settings().tenant)
                if r.action == AUDIT_ACTION
            ]
    finally:
        database.dispose()


def _kept(data_dir: Path) -> dict[str, Any]:
    """What a refusal must leave as it was: every table but the audit log, and the files."""
    snapshot = data_snapshot(data_dir)
    tables = snapshot["tables"]
    assert isinstance(tables, dict)
    return {**snapshot, "tables": {k: v for k, v in tables.items() if k != "audit_log"}}


def _refused_at_the_door(code: int, out: str, err: str) -> None:
    assert (code, out) == (3, ""), (code, out, err)
    assert err.count("\n") == 1 and "refused by moderation: sexual/minors" in err, err


def test_generate_and_campaign_run_refuse_at_the_door(
    capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path
) -> None:
    code, _, err = run_cli(capsys, "brands", "add", str(BRANDS / "acme-coffee.yaml"))
    assert code == 0, err
    pose = tmp_path / "pose.yaml"
    pose.write_text(yaml.safe_dump({"body": POSE}), encoding="utf-8")
    code, _, err = run_cli(
        capsys, "templates", "create", "pose", "--file", str(pose), "--as", "ana"
    )
    assert code == 0, err
    code, out, err = _generate(capsys, LEGAL, tmp_path / "first")
    assert code == 0 and json.loads(out)["status"] == "succeeded", (out, err)
    before = _kept(data_dir)

    _refused_at_the_door(*_generate(capsys, CROSSING, tmp_path / "o1"))
    # the template and the brief pass on their own; the prompt they render does not
    _refused_at_the_door(*_generate(capsys, MINOR, tmp_path / "o2", "--template", "pose@1"))
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text(
        yaml.safe_dump(
            {
                "name": "door",
                "brand": "Acme Coffee",
                "defaults": {"formats": ["64x64"], "budget_usd": 0.05},
                "assets": [{"id": "cup", "brief": LEGAL}, {"id": "kid", "brief": CROSSING}],
            }
        ),
        encoding="utf-8",
    )
    _refused_at_the_door(
        *run_cli(capsys, "campaign", "run", str(campaign), "--campaign-id", "c-door", "--json")
    )
    assert _kept(data_dir) == before, "nothing stored: no run, no spend, no budget"
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()

    entries = _refusals()
    assert [entry[:3] for entry in entries] == [
        ("cli", "generation", "(new generation)"),
        ("cli", "generation", "(new generation)"),
        ("cli", "campaign", "c-door"),
    ]
    assert [entry[3]["source"] for entry in entries] == ["brief", "prompt", "brief"]
    assert all("harbour" not in json.dumps(entry[3]) for entry in entries)

    code, out, err = _generate(capsys, LEGAL, tmp_path / "after")
    assert code == 0 and json.loads(out)["status"] == "succeeded", (out, err)
