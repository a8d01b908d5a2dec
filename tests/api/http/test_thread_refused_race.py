"""A follow-up sent while the turn before it is still undecided, through the real app on SQLite
and PostgreSQL (docs/http-api.md, Threads): when that turn is then refused, the follow-up is
applied to the latest turn not refused, so the refused text is never carried into its brief.

The order is made certain: the refused turn and the follow-up are posted to a replica with no
workers (both stay queued, the follow-up revised on the undecided turn's brief), then a replica
with two workers starts and takes both at once. Before session 24 the follow-up ran the refused
instruction ("add a jar of instant coffee, steam") and was refused too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.settings import Settings
from tests.api.http.conftest import Keys, both_databases, brand_kit, wait_job

settings = pytest.fixture(both_databases)
FIRST = "a croissant beside a coffee cup on a marble counter"
REFUSED = "add a jar of instant coffee"


def _post(client: TestClient, creator: dict[str, str], thread_id: str, content: str) -> Any:
    sent = client.post(
        f"/v1/threads/{thread_id}/messages", json={"content": content}, headers=creator
    )
    assert sent.status_code == 202, sent.text
    return sent.json()


@pytest.mark.parametrize("later", [["add steam"], ["add steam", "warmer"]])
def test_a_follow_up_of_a_turn_then_refused_does_not_carry_the_refused_text(
    make_client: Callable[..., TestClient],
    keys: Keys,
    settings: Settings,
    later: list[str],
) -> None:
    creator = keys["A", "creator"]
    first_replica = make_client()
    added = first_replica.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"])
    assert added.status_code == 201, added.text
    made = first_replica.post(
        "/v1/threads",
        json={"brand": "Acme Coffee", "title": "t", "message": FIRST, "size": "64x64"},
        headers=creator,
    )
    assert made.status_code == 201, made.text
    thread_id = made.json()["id"]
    first = wait_job(first_replica, made.json()["messages"][0]["job"]["id"], creator)
    assert first["result"]["status"] != "refused", first

    idle = make_client(workers=0)  # nothing runs here: each turn stays undecided
    no = _post(idle, creator, thread_id, REFUSED)
    assert no["message"]["brief"] == f"{FIRST}, a jar of instant coffee", no["message"]
    sent = [_post(idle, creator, thread_id, content) for content in later]
    # revised on the undecided turn's brief, as it stood when posted
    assert sent[0]["message"]["edit"]["before"] == no["message"]["brief"]

    working = make_client(workers=2)  # takes the queued turns, two at once
    refused = wait_job(working, no["job"]["id"], creator)
    assert refused["result"]["status"] == "refused", refused
    assert "instant coffee" in refused["result"]["reason"]
    done = [wait_job(working, s["job"]["id"], creator) for s in sent]
    for job in done:
        assert job["result"]["status"] != "refused", job["result"]
        assert job["result"]["attempts"] > 0, job["result"]
        assert "instant coffee" not in job["result"]["brief"], job["result"]

    convo = working.get(f"/v1/threads/{thread_id}", headers=creator).json()
    messages = convo["messages"]
    assert [m["content"] for m in messages] == [FIRST, REFUSED, *later]
    # the refused turn keeps its text, brief, job and reason
    assert messages[1]["brief"] == no["message"]["brief"]
    assert messages[1]["refused"] == refused["result"]["reason"]
    assert messages[1]["job"]["id"] == no["job"]["id"]
    # the follow-ups edit the brief of the latest turn not refused, and say so
    assert messages[2]["edit"]["before"] == FIRST
    assert messages[2]["brief"] == f"{FIRST}, steam"
    for previous, message in itertools.pairwise(messages[2:]):
        assert message["edit"]["before"] == previous["brief"]
    for message in messages[2:]:
        assert "instant coffee" not in message["brief"] and message["refused"] is None
        assert "instant coffee" not in message["edit"]["after"]
    # and so do the runs
    for message, job in zip(messages[2:], done, strict=True):
        run = working.get(f"/v1/runs/{job['run_id']}", headers=creator).json()
        assert run["brief"] == message["brief"], (run["brief"], message["brief"])
    # with the seed of the image the turn it edits accepted, as a follow-up posted after the
    # refusal would have (the refused turn had none to give)
    if first["result"]["images"]:
        run = working.get(f"/v1/runs/{done[0]['run_id']}", headers=creator).json()
        assert run["request"]["seed"] == first["result"]["images"][0]["seed"], run["request"]
