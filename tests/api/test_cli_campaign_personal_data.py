"""``brandloop campaign run`` refuses a campaign name or id holding personal data with one line
and exit 2, before anything runs or is stored: the name becomes the campaign id, a key that
runs, budgets and listings keep and that cannot be redacted and stay the same key."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.test_cli import run_cli
from tests.databases import stored_anywhere

ROOT = Path(__file__).resolve().parents[2]
PHONE = "415-555-0166"


def _campaign(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "campaign.yaml"
    path.write_text(
        f"name: {name}\nbrand: {ROOT / 'examples/brands/acme-coffee.yaml'}\n"
        'assets:\n  - {id: hero, brief: "a coffee cup", formats: ["64x64"]}\n',
        encoding="utf-8",
    )
    return path


def test_a_campaign_name_or_id_with_personal_data_is_refused(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database, tmp_path: Path
) -> None:
    code, out, err = run_cli(capsys, "campaign", "run", str(_campaign(tmp_path, f"call-{PHONE}")))
    assert code == 2 and out == "" and err.count("\n") == 1, (out, err)
    assert "name holds personal data (phone)" in err and PHONE not in err
    path = _campaign(tmp_path, "autumn")
    code, out, err = run_cli(capsys, "campaign", "run", str(path), "--campaign-id", f"c-{PHONE}")
    assert code == 2 and err.count("\n") == 1 and "--campaign-id holds personal data" in err
    assert stored_anywhere(db, PHONE, settings.data_dir) == []
