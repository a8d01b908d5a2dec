"""The CLI refuses an API key brandloop made (any principal's, any tenant's, live or revoked)
in text a user types, as the service does (docs/http-api.md): one line on stderr naming the
argument or the file's field, exit 2, the value never repeated, nothing stored; on SQLite
and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandloop.api.auth import create_key, revoke_key
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.test_cli import data_snapshot, run_cli
from tests.databases import stored_anywhere

ROOT = Path(__file__).resolve().parents[2]
BRAND = str(ROOT / "examples/brands/acme-coffee.yaml")


def _key(db: Database, tenant: str, *, revoked: bool = False) -> str:
    with db.session() as session:
        row, key = create_key(session, tenant=tenant, role="creator", principal="someone")
        if revoked:
            revoke_key(session, row=row, actor="test")
    return key


@pytest.mark.parametrize(("tenant", "revoked"), [("default", False), ("B", False), ("B", True)])
def test_a_brief_holding_an_api_key_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    db: Database,
    tenant: str,
    revoked: bool,
) -> None:
    key = _key(db, tenant, revoked=revoked)
    before = data_snapshot(settings.data_dir)
    code, out, err = run_cli(capsys, "generate", f"a cup labelled {key}", "--brand", BRAND)
    assert code == 2 and out == "" and err.count("\n") == 1, (out, err)
    assert "holds an API key" in err and "BRIEF" in err.upper(), err
    assert key[16:] not in err and key[:15] not in err
    assert data_snapshot(settings.data_dir) == before
    assert stored_anywhere(db, key[16:], settings.data_dir) == []


def test_a_campaign_file_holding_an_api_key_is_refused_naming_the_field(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database, tmp_path: Path
) -> None:
    key = _key(db, "B")
    path = tmp_path / "campaign.yaml"
    path.write_text(
        f"name: autumn\nbrand: {BRAND}\n"
        f'assets:\n  - {{id: hero, brief: "a cup labelled {key}", formats: ["64x64"]}}\n',
        encoding="utf-8",
    )
    code, out, err = run_cli(capsys, "campaign", "run", str(path))
    assert code == 2 and err.count("\n") == 1, (out, err)
    assert "assets.0.brief holds an API key" in err and key[16:] not in err
    assert stored_anywhere(db, key[16:], settings.data_dir) == []


def test_a_key_shaped_text_that_is_no_key_is_taken(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database
) -> None:
    made_up = "bl_0123456789ab_" + "A" * 43
    code, out, err = run_cli(capsys, "moderate", f"a cup labelled {made_up}", "--brand", BRAND)
    assert code == 0, (out, err)
