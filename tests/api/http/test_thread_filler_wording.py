"""Through ``POST /v1/threads/{id}/messages`` (docs/http-api.md, Threads): a follow-up naming
nothing to show is a 422 with nothing stored. An outside tester's "ok" started a paid run with
"ok" pasted into the brief, and "drop the" one with "the" taken out of the brief and put in the
negative prompt, while "thanks!" was already a 422."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem, wait_job


@pytest.mark.parametrize("content", ["ok", "drop the", "remove it", "undo", "perfect, thank you"])
def test_a_follow_up_naming_nothing_is_a_422_and_nothing_is_stored(
    client: TestClient, keys: Keys, acme: dict[str, Any], content: str
) -> None:
    creator = keys["A", "creator"]
    body = {"brand": "Acme Coffee", "message": "a latte on the bench in a park", "count": 1}
    made = client.post("/v1/threads", json=body | {"size": "64x64"}, headers=creator)
    assert made.status_code == 201, made.text
    wait_job(client, made.json()["messages"][0]["job"]["id"], creator)
    thread_id = made.json()["id"]
    jobs = client.get("/v1/jobs", headers=creator).json()

    sent = client.post(
        f"/v1/threads/{thread_id}/messages", json={"content": content}, headers=creator
    )
    problem = assert_problem(sent, 422, "validation")
    assert problem["errors"][0]["loc"] == ["body", "content"], problem
    assert "asks for no change to the brief" in problem["errors"][0]["msg"], problem
    thread = client.get(f"/v1/threads/{thread_id}", headers=creator).json()
    assert len(thread["messages"]) == 1  # no message, no job, no quota held
    assert client.get("/v1/jobs", headers=creator).json() == jobs

    # the next edit is made on the brief as it was, "the" and all, and avoids nothing
    later = client.post(
        f"/v1/threads/{thread_id}/messages",
        json={"content": "swap the bench for a table"},
        headers=creator,
    )
    assert later.status_code == 202, later.text
    edit = later.json()["message"]["edit"]
    assert edit["after"] == "a latte on a table in a park", edit
    assert edit["avoid"] == ["bench"] and edit["added"] == ["a table"], edit
    wait_job(client, later.json()["job"]["id"], creator)
