"""``brandloop db redact`` takes out the configured credentials that text stored before
session 25 holds (a brief with ``$BRANDLOOP_OPENAI_API_KEY`` expanded in it, say), on SQLite
and PostgreSQL: each is replaced by ``[redacted]``, the marker every other secret gets, in jobs
(request, result, error), thread messages (content, brief, edit), thread titles and campaigns
(name, plan); the output counts rows and never shows a value; a second run changes nothing.
It used to redact personal data only, leaving the keys in clear text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from brandloop.api.jobs import store
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.registry.models_service import CampaignRow, JobRow, ThreadMessageRow, ThreadRow
from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, run_cli
from tests.databases import stored_anywhere

OPENAI_KEY = "sk-test-door26SecretValue4321"
SIGNER_TOKEN = "signer-token-door26-0123456789"
WRITER_KEY = "writer-key-door26-0123456789"
SECRETS = (OPENAI_KEY, SIGNER_TOKEN, WRITER_KEY)
EMAIL = "leak.door26@example.com"


@pytest.fixture
def settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("BRANDLOOP_C2PA_REMOTE_TOKEN", SIGNER_TOKEN)
    monkeypatch.setenv("BRANDLOOP_WRITER_API_KEY", WRITER_KEY)  # no provider: the writer is off
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _stored_before_session_25(db: Database) -> dict[str, str]:
    """Rows as older releases stored them: credentials (and an e-mail) in clear text, and one
    row of each table without any. Their ids."""
    with db.session() as session:
        brand = crud.get_brand(session, tenant="default", ref="Acme Coffee")
        assert brand is not None
        leaky = store.create_job(
            session,
            tenant="default",
            kind="generation",
            request={"brief": f"a cup labelled {OPENAI_KEY}", "avoid": [WRITER_KEY], "count": 1},
        )
        leaky.result = {"brief": f"a cup labelled {OPENAI_KEY}", "status": "succeeded"}
        leaky.error = {"detail": f"signer said {SIGNER_TOKEN}"}
        clean = store.create_job(
            session, tenant="default", kind="generation", request={"brief": "a cup", "count": 1}
        )
        thread = store.create_thread(
            session, tenant="default", brand=brand, title=f"keys {SIGNER_TOKEN}"
        )
        store.add_message(
            session,
            thread_id=thread.id,
            role="user",
            content=f"mail {EMAIL}, key {OPENAI_KEY}",
            brief=f"mail {EMAIL}, key {OPENAI_KEY}",
            edit={"after": f"a mug {WRITER_KEY}", "avoid": []},
        )
        quiet = store.create_thread(session, tenant="default", brand=brand, title="autumn")
        campaign = store.create_campaign(
            session,
            tenant="default",
            name=f"autumn {WRITER_KEY}",
            brand=brand,
            budget_usd=0.2,
            assets=[
                {"index": 0, "brief": "a banner", "format": "64x64", "count": 1},
                {"index": 1, "brief": f"a poster {OPENAI_KEY}", "format": "64x64", "count": 1},
            ],
        )
        return {
            "leaky": leaky.id,
            "clean": clean.id,
            "thread": thread.id,
            "quiet": quiet.id,
            "campaign": campaign.id,
        }


def test_db_redact_replaces_stored_credentials_and_again_changes_nothing(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database
) -> None:
    code, _, err = run_cli(capsys, "brands", "add", str(BRANDS / "acme-coffee.yaml"))
    assert code == 0, err
    ids = _stored_before_session_25(db)
    assert all(stored_anywhere(db, secret) for secret in SECRETS)

    code, out, err = run_cli(capsys, "db", "redact", "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "redacted": {"jobs": 0, "thread_messages": 1, "threads": 0, "campaigns": 0},
        "credentials": {"jobs": 1, "thread_messages": 1, "threads": 1, "campaigns": 1},
    }
    assert not any(secret in out + err for secret in SECRETS)
    for value in (*SECRETS, EMAIL):
        assert stored_anywhere(db, value) == [], value
    with db.session() as session:
        leaky = session.get(JobRow, ids["leaky"])
        clean = session.get(JobRow, ids["clean"])
        thread = session.get(ThreadRow, ids["thread"])
        quiet = session.get(ThreadRow, ids["quiet"])
        campaign = session.get(CampaignRow, ids["campaign"])
        assert leaky and clean and thread and quiet and campaign
        assert leaky.request == {
            "brief": "a cup labelled [redacted]",
            "avoid": ["[redacted]"],
            "count": 1,
        }
        assert leaky.result == {"brief": "a cup labelled [redacted]", "status": "succeeded"}
        assert leaky.error == {"detail": "signer said [redacted]"}
        assert clean.request == {"brief": "a cup", "count": 1}
        assert (thread.title, quiet.title) == ("keys [redacted]", "autumn")
        message = session.query(ThreadMessageRow).filter_by(thread_id=thread.id).one()
        assert message.content == message.brief == "mail [redacted email], key [redacted]"
        assert message.edit == {"after": "a mug [redacted]", "avoid": []}
        assert campaign.name == "autumn [redacted]"
        assert [a["brief"] for a in campaign.assets] == ["a banner", "a poster [redacted]"]

    code, out, err = run_cli(capsys, "db", "redact")
    assert code == 0, err
    assert out.splitlines() == [
        "redacted personal data in 0 stored row(s): 0 jobs, 0 thread_messages, 0 threads, "
        "0 campaigns",
        "redacted configured credentials in 0 stored row(s): 0 jobs, 0 thread_messages, "
        "0 threads, 0 campaigns",
    ]
