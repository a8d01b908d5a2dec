"""Personal data in a brief is redacted before the service stores anything (docs/signals.md,
docs/http-api.md): the jobs, thread messages and campaign plans keep, and the API shows, the
brief the run ran, ``[redacted email]`` where the address was - on SQLite and PostgreSQL; and so
do a thread's title and a campaign's name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from brandloop.registry.db import Database
from brandloop.registry.models_service import CampaignRow, JobRow, ThreadMessageRow, ThreadRow
from tests.api.http.conftest import Keys, wait_job
from tests.api.test_cli import run_cli
from tests.databases import stored_anywhere

EMAILS = ("gen.pii@example.com", "thread.pii@example.com", "follow.pii@example.com")
CAMPAIGN_EMAIL = "camp.pii@example.com"
TITLE_EMAIL = "walt.title@example.com"
NAME_EMAIL = "walt.name@example.com"
PHONE = "+47 912 34 567"


def test_no_brief_keeps_personal_data_in_any_table(
    client: TestClient,
    keys: Keys,
    acme: dict[str, Any],
    db: Database,
    data_dir: Path,
    database: str,
) -> None:
    creator = keys["A", "creator"]
    generation = client.post(
        "/v1/generations?wait=60",
        json={"brief": f"a cup, contact {EMAILS[0]} or {PHONE}", "brand": "Acme Coffee"}
        | {"size": "64x64"},
        headers=creator,
    )
    assert generation.status_code == 200, generation.text
    assert generation.json()["result"]["brief"] == (
        "a cup, contact [redacted email] or [redacted phone]"
    )

    created = client.post(
        "/v1/threads",
        json={"brand": "Acme Coffee", "message": f"a mug, mail {EMAILS[1]}", "size": "64x64"}
        | {"title": f"call {TITLE_EMAIL} {PHONE}"},
        headers=creator,
    )
    assert created.status_code == 201, created.text
    thread = created.json()
    assert thread["title"] == "call [redacted email] [redacted phone]"
    first = thread["messages"][0]
    assert (first["content"], first["brief"]) == (
        "a mug, mail [redacted email]",
        "a mug, mail [redacted email]",
    )
    wait_job(client, first["job"]["id"], creator)
    follow = client.post(
        f"/v1/threads/{thread['id']}/messages",
        json={"content": f"add a note for {EMAILS[2]}"},
        headers=creator,
    )
    assert follow.status_code == 202, follow.text
    wait_job(client, follow.json()["job"]["id"], creator)
    by_generation = client.post(
        "/v1/generations?wait=60",
        json={"brief": f"add steam, call {PHONE}", "brand": "Acme Coffee"}
        | {"thread_id": thread["id"]},
        headers=creator,
    )
    assert by_generation.status_code == 200, by_generation.text

    campaign = client.post(
        "/v1/campaigns",
        json={
            "name": NAME_EMAIL,
            "brand": "Acme Coffee",
            "budget_usd": 0.2,
            "assets": [{"brief": f"a banner, write to {CAMPAIGN_EMAIL}", "formats": ["64x64"]}],
        },
        headers=creator,
    )
    assert campaign.status_code == 202, campaign.text
    asset = campaign.json()["assets"][0]
    assert asset["brief"] == "a banner, write to [redacted email]"
    assert campaign.json()["name"] == "[redacted email]"
    wait_job(client, asset["job"]["id"], creator)

    # the thread shows the brief each message ran, as the run ran it
    convo = client.get(f"/v1/threads/{thread['id']}", headers=keys["A", "viewer"]).json()
    for message in convo["messages"]:
        run = client.get(f"/v1/runs/{message['job']['run_id']}", headers=creator).json()
        assert message["brief"] == run["brief"] == run["request"]["brief"], message
        assert "[redacted " in message["content"], message["content"]

    # and nothing anywhere keeps the values: no table (and, on SQLite, no file of the data dir)
    files = data_dir if database == "sqlite" else None
    listed = client.get("/v1/threads", headers=keys["A", "viewer"]).json()
    assert TITLE_EMAIL not in json.dumps(listed)
    for value in (*EMAILS, CAMPAIGN_EMAIL, TITLE_EMAIL, NAME_EMAIL, "912 34 567"):
        assert stored_anywhere(db, value, files) == [], value


def test_db_redact_redacts_briefs_stored_before_redaction_and_again_changes_nothing(
    client: TestClient,
    keys: Keys,
    acme: dict[str, Any],
    db: Database,
    capsys: pytest.CaptureFixture[str],
) -> None:
    creator = keys["A", "creator"]
    job = client.post(
        "/v1/generations", json={"brief": "a cup", "brand": "Acme Coffee"}, headers=creator
    ).json()
    thread = client.post(
        "/v1/threads", json={"brand": "Acme Coffee", "message": "a mug"}, headers=creator
    ).json()
    campaign = client.post(
        "/v1/campaigns",
        json={"name": "old", "brand": "Acme Coffee", "budget_usd": 0.2,
              "assets": [{"brief": "a banner", "formats": ["64x64"]}, {"brief": "a poster"}]},
        headers=creator,
    ).json()  # fmt: skip
    for queued in (job, thread["messages"][0]["job"], *(a["job"] for a in campaign["assets"])):
        wait_job(client, queued["id"], creator)
    # rows as the service stored them before it redacted briefs: the values in clear text
    with db.session() as session:
        row = session.get(JobRow, job["id"])
        assert row is not None
        row.request = {**row.request, "brief": f"a cup, contact {EMAILS[0]}"}
        message = session.scalars(
            select(ThreadMessageRow).where(ThreadMessageRow.thread_id == thread["id"])
        ).one()
        message.content = message.brief = f"a mug, mail {EMAILS[1]} or {PHONE}"
        plan = session.get(CampaignRow, campaign["id"])
        assert plan is not None
        plan.assets = [
            {**plan.assets[0], "brief": f"a banner, to {CAMPAIGN_EMAIL}"},
            plan.assets[1],
        ]
        plan.name = NAME_EMAIL
        stored_thread = session.get(ThreadRow, thread["id"])
        assert stored_thread is not None
        stored_thread.title = f"call {TITLE_EMAIL} {PHONE}"
    assert stored_anywhere(db, EMAILS[0], None) != []

    code, out, err = run_cli(capsys, "db", "redact", "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "redacted": {"jobs": 1, "thread_messages": 1, "threads": 1, "campaigns": 1},
        # no credential configured here (tests/api/test_cli_db_redact_credentials.py)
        "credentials": {"jobs": 0, "thread_messages": 0, "threads": 0, "campaigns": 0},
    }
    for value in (EMAILS[0], EMAILS[1], CAMPAIGN_EMAIL, TITLE_EMAIL, NAME_EMAIL, "912 34 567"):
        assert stored_anywhere(db, value, None) == [], value
    with db.session() as session:
        stored = session.get(JobRow, job["id"])
        assert stored is not None
        assert stored.request["brief"] == "a cup, contact [redacted email]"
    listed = client.get(f"/v1/campaigns/{campaign['id']}", headers=creator).json()
    assert [a["brief"] for a in listed["assets"]] == ["a banner, to [redacted email]", "a poster"]

    code, out, err = run_cli(capsys, "db", "redact")
    assert code == 0, err
    assert out.startswith("redacted personal data in 0 stored row(s)")
