"""A follow-up as people write it, through ``POST /v1/threads/{id}/messages`` (docs/http-api.md,
Threads): a shift or a removal asked as a question or a wish ("can it be warmer?", "it should be
brighter", "is it possible to remove the bench?") is that shift or removal; a question that asks
for no change ("what formats do you have?") and a follow-up with no words ("?!?...") are a 422
with nothing stored, also while the brand's clarifying question is open (which stays open). An
outside tester's thread had each of these sentences pasted into the brief and carried into every
later turn, and "?!?..." started a new paid job with the brief unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.settings import Settings
from tests.api.http.conftest import Keys, assert_problem, wait_job


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


def test_shifts_and_a_removal_asked_as_questions_edit_and_are_never_pasted_in(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    thread_id = _start(client, keys, "a latte on a bench", size="64x64")
    for content, shift in [
        ("can it be warmer?", "warmer"),
        ("could it be darker?", "darker"),
        ("it should be brighter", "brighter"),
    ]:
        sent = _send(client, keys, thread_id, content)
        message = sent["message"]
        assert message["brief"] == "a latte on a bench", message
        assert message["edit"]["shifts"] == [shift] and message["edit"]["added"] == []
    sent = _send(client, keys, thread_id, "is it possible to remove the bench?")
    edit = sent["message"]["edit"]
    assert edit["after"] == "a latte" and edit["removed"] == ["bench"], edit
    request = _run_request(client, keys, sent["job"])
    assert request["brief"] == "a latte" and request["avoid"] == ["bench"], request
    assert request["shifts"] == ["warmer", "brighter"], request


@pytest.mark.parametrize("content", ["what formats do you have?", "?!?...", "is the bench ok?"])
def test_a_follow_up_asking_for_no_change_is_a_422_and_nothing_is_stored(
    client: TestClient, keys: Keys, acme: dict[str, Any], content: str
) -> None:
    creator = keys["A", "creator"]
    thread_id = _start(client, keys, "a latte on a bench", size="64x64")
    jobs = client.get("/v1/jobs", headers=creator).json()
    sent = client.post(
        f"/v1/threads/{thread_id}/messages", json={"content": content}, headers=creator
    )
    problem = assert_problem(sent, 422, "validation")
    assert problem["errors"][0]["loc"] == ["body", "content"], problem
    assert problem["errors"][0]["msg"].startswith("this follow-up asks for no change"), problem
    as_generation = client.post(
        "/v1/generations",
        json={"brand": "Acme Coffee", "brief": content, "thread_id": thread_id},
        headers=creator,
    )
    problem = assert_problem(as_generation, 422, "validation")
    assert problem["errors"][0]["loc"] == ["body", "brief"], problem
    thread = client.get(f"/v1/threads/{thread_id}", headers=creator).json()
    assert len(thread["messages"]) == 1  # no message, no job, no quota held
    assert client.get("/v1/jobs", headers=creator).json() == jobs
    # the next edit is made on the brief as it was
    later = _send(client, keys, thread_id, "add steam")
    assert later["message"]["brief"] == "a latte on a bench, steam"


def test_a_question_back_to_the_brands_clarification_leaves_it_open(
    client: TestClient, keys: Keys, acme: dict[str, Any], settings: Settings
) -> None:
    folder = settings.data_dir / "policies"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acme-coffee.yaml").write_text("conflicts: ask\n", encoding="utf-8")
    creator = keys["A", "creator"]
    thread_id = _start(client, keys, "a latte on a bench", size="640x1024")
    asked = client.get(f"/v1/threads/{thread_id}", headers=creator).json()["messages"]
    assert "Should I use the nearest Acme Coffee format" in asked[0]["reply"]

    sent = client.post(
        f"/v1/threads/{thread_id}/messages",
        json={"content": "what formats do you have?"},
        headers=creator,
    )
    problem = assert_problem(sent, 422, "validation")
    msg = problem["errors"][0]["msg"]
    assert "the brand's question is still open" in msg and "formats" not in msg, problem
    assert client.get(f"/v1/threads/{thread_id}", headers=creator).json()["messages"] == asked

    answered = _send(client, keys, thread_id, "yes")  # still the answer to the open question
    assert answered["message"]["edit"] is None
    assert answered["message"]["brief"] == "a latte on a bench"
    request = _run_request(client, keys, answered["job"])
    assert request["size"] == "1024x1024" and request["brief"] == "a latte on a bench"
