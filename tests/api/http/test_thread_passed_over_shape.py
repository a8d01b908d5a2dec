"""A follow-up posted while the turn before it is undecided takes that turn's count, size and
budget; once that turn is refused or cancelled, the follow-up runs with the shape of the turn
that stands instead, except what its own body named (docs/http-api.md, Threads). On SQLite
and PostgreSQL, with the order made certain as in ``test_thread_refused_race.py``: the turns
are posted to a replica with no workers, then one with workers takes them.

An outside tester's "add steam" after a refused "add a jar of instant coffee" (count 3,
512x512, $2) ran with 3 images at 512x512 and $2, not the standing turn's 4, 1024x1024 and
$0.50: only the brief, avoid list and shifts were taken again from the standing turn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.settings import Settings
from tests.api.http.conftest import Keys, both_databases, brand_kit, wait_job

settings = pytest.fixture(both_databases)
FIRST = "a coffee cup on a table"
#: the passed-over turn's shape, unlike the standing turn's (2 images, 64x64, $0.40)
ITS_SHAPE = {"count": 3, "size": "96x96", "budget_usd": 2.0}


def _post(client: TestClient, creator: dict[str, str], thread_id: str, **body: Any) -> Any:
    sent = client.post(f"/v1/threads/{thread_id}/messages", json=body, headers=creator)
    assert sent.status_code == 202, sent.text
    return sent.json()


def _shape(client: TestClient, creator: dict[str, str], job: dict[str, Any]) -> Any:
    request = client.get(f"/v1/runs/{job['run_id']}", headers=creator).json()["request"]
    return {k: request[k] for k in ("count", "size", "aspect_ratio", "budget_usd")}


@pytest.mark.parametrize("passed_over", ["refused", "cancelled"])
def test_a_follow_up_of_a_passed_over_turn_takes_the_standing_turns_shape(
    make_client: Callable[..., TestClient], keys: Keys, settings: Settings, passed_over: str
) -> None:
    creator = keys["A", "creator"]
    first_replica = make_client()
    added = first_replica.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"])
    assert added.status_code == 201, added.text
    body = {"brand": "Acme Coffee", "message": FIRST, "count": 2, "size": "64x64"}
    made = first_replica.post("/v1/threads", json=body | {"budget_usd": 0.4}, headers=creator)
    assert made.status_code == 201, made.text
    thread_id = made.json()["id"]
    first = wait_job(first_replica, made.json()["messages"][0]["job"]["id"], creator)
    standing = _shape(first_replica, creator, first)
    assert standing == {"count": 2, "size": "64x64", "aspect_ratio": None, "budget_usd": 0.4}

    idle = make_client(workers=0)  # nothing runs here: each turn stays undecided
    content = "add a jar of instant coffee" if passed_over == "refused" else "add a saucer"
    no = _post(idle, creator, thread_id, content=content, **ITS_SHAPE)
    plain = _post(idle, creator, thread_id, content="add steam")
    # its own count (the passed-over turn's too) and aspect ratio are kept; its budget is not
    named = _post(idle, creator, thread_id, content="warmer", count=3, aspect_ratio="4:3")
    if passed_over == "cancelled":
        cancelled = idle.post(f"/v1/jobs/{no['job']['id']}/cancel", headers=creator)
        assert cancelled.status_code == 200, cancelled.text

    working = make_client(workers=2)
    decided = wait_job(working, no["job"]["id"], creator)
    if passed_over == "refused":
        assert decided["result"]["status"] == "refused", decided["result"]
    else:
        assert decided["state"] == "cancelled", decided
    ran = wait_job(working, plain["job"]["id"], creator)
    assert _shape(working, creator, ran) == standing
    ran = wait_job(working, named["job"]["id"], creator)
    assert _shape(working, creator, ran) == {
        "count": 3,
        "size": None,
        "aspect_ratio": "4:3",
        "budget_usd": 0.4,
    }
    messages = working.get(f"/v1/threads/{thread_id}", headers=creator).json()["messages"]
    assert messages[2]["brief"] == f"{FIRST}, steam", messages[2]


def test_a_follow_up_posted_after_the_refusal_keeps_what_it_names(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    """Posted once the refusal is known, a follow-up is made on the standing turn already:
    what it leaves out is that turn's, what it names its own."""
    creator = keys["A", "creator"]
    body = {"brand": "Acme Coffee", "message": FIRST, "count": 2, "size": "64x64"}
    made = client.post("/v1/threads", json=body | {"budget_usd": 0.4}, headers=creator)
    assert made.status_code == 201, made.text
    thread_id = made.json()["id"]
    wait_job(client, made.json()["messages"][0]["job"]["id"], creator)
    no = _post(client, creator, thread_id, content="add a jar of instant coffee", **ITS_SHAPE)
    assert wait_job(client, no["job"]["id"], creator)["result"]["status"] == "refused"
    sent = _post(client, creator, thread_id, content="add steam", budget_usd=0.3)
    ran = wait_job(client, sent["job"]["id"], creator)
    assert _shape(client, creator, ran) == {
        "count": 2,
        "size": "64x64",
        "aspect_ratio": None,
        "budget_usd": 0.3,
    }
