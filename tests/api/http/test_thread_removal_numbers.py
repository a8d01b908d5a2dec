"""Through ``POST /v1/threads/{id}/messages`` (docs/http-api.md, Threads): "bring back the
napkin" takes "napkins" off ``avoid`` (an outside tester's stayed avoided: the avoided term was
compared with "the napkin" as text), and "no berries" leaves "a tart" of "a berry tart" (it left
"a latte with tart")."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, wait_job


def _start(client: TestClient, keys: Keys, message: str, **extra: Any) -> str:
    creator = keys["A", "creator"]
    body = {"brand": "Acme Coffee", "message": message, "count": 1} | extra
    made = client.post("/v1/threads", json=body, headers=creator)
    assert made.status_code == 201, made.text
    wait_job(client, made.json()["messages"][0]["job"]["id"], creator)
    thread_id: str = made.json()["id"]
    return thread_id


def _send(client: TestClient, keys: Keys, thread_id: str, content: str) -> dict[str, Any]:
    creator = keys["A", "creator"]
    sent = client.post(
        f"/v1/threads/{thread_id}/messages", json={"content": content}, headers=creator
    )
    assert sent.status_code == 202, sent.text
    body: dict[str, Any] = sent.json()
    body["job"] = wait_job(client, body["job"]["id"], creator)
    return body


def _run_request(client: TestClient, keys: Keys, job: dict[str, Any]) -> dict[str, Any]:
    run = client.get(f"/v1/runs/{job['run_id']}", headers=keys["A", "creator"]).json()
    request: dict[str, Any] = run["request"]
    return request


@pytest.mark.parametrize(
    ("removal", "back"),
    [("no napkins", "bring back the napkin"), ("drop the napkin", "bring back the napkins")],
)
def test_bringing_back_a_thing_takes_it_off_avoid_in_either_number(
    client: TestClient, keys: Keys, acme: dict[str, Any], removal: str, back: str
) -> None:
    thread_id = _start(
        client, keys, "a latte on a counter with a croissant and a napkin", size="64x64"
    )
    removed = _send(client, keys, thread_id, removal)
    assert removed["message"]["brief"] == "a latte on a counter with a croissant"
    assert len(removed["message"]["edit"]["avoid"]) == 1
    brought = _send(client, keys, thread_id, back)
    assert brought["message"]["edit"]["avoid"] == []
    assert _run_request(client, keys, brought["job"])["avoid"] == []


def test_removing_a_modifier_leaves_its_noun_phrase_whole(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    thread_id = _start(client, keys, "a latte with a berry tart, two cookies", size="64x64")
    sent = _send(client, keys, thread_id, "no berries")
    assert sent["message"]["brief"] == "a latte with a tart, two cookies"
    request = _run_request(client, keys, sent["job"])
    assert request["brief"] == "a latte with a tart, two cookies"
    assert request["avoid"] == ["berries"]
