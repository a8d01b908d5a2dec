"""Personal data in a brief is redacted before the service stores anything (docs/signals.md,
docs/http-api.md): the jobs, thread messages and campaign plans keep, and the API shows, the
brief the run ran, ``[redacted email]`` where the address was - on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from brandloop.registry.db import Database
from tests.api.http.conftest import Keys, wait_job
from tests.databases import stored_anywhere

EMAILS = ("gen.pii@example.com", "thread.pii@example.com", "follow.pii@example.com")
CAMPAIGN_EMAIL = "camp.pii@example.com"
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
        json={"brand": "Acme Coffee", "message": f"a mug, mail {EMAILS[1]}", "size": "64x64"},
        headers=creator,
    )
    assert created.status_code == 201, created.text
    thread = created.json()
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
            "name": "pii",
            "brand": "Acme Coffee",
            "budget_usd": 0.2,
            "assets": [{"brief": f"a banner, write to {CAMPAIGN_EMAIL}", "formats": ["64x64"]}],
        },
        headers=creator,
    )
    assert campaign.status_code == 202, campaign.text
    asset = campaign.json()["assets"][0]
    assert asset["brief"] == "a banner, write to [redacted email]"
    wait_job(client, asset["job"]["id"], creator)

    # the thread shows the brief each message ran, as the run ran it
    convo = client.get(f"/v1/threads/{thread['id']}", headers=keys["A", "viewer"]).json()
    for message in convo["messages"]:
        run = client.get(f"/v1/runs/{message['job']['run_id']}", headers=creator).json()
        assert message["brief"] == run["brief"] == run["request"]["brief"], message
        assert "[redacted " in message["content"], message["content"]

    # and nothing anywhere keeps the values: no table (and, on SQLite, no file of the data dir)
    files = data_dir if database == "sqlite" else None
    for value in (*EMAILS, CAMPAIGN_EMAIL, "912 34 567"):
        assert stored_anywhere(db, value, files) == [], value
