"""A follow-up's template, model and providers allow-list hold for its turn, checked as a
generation's are, through ``POST /v1/generations`` with a ``thread_id`` and ``POST
/v1/threads/{id}/messages`` (docs/http-api.md, Threads). An outside tester's follow-up with
``"providers": ["nosuch"]`` was a 202 and ran on any provider: the fields were dropped, so an
allow-list meant to keep spend off some providers did not hold."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem, wait_job

FIRST = "a coffee cup on a table"


def _thread(client: TestClient, creator: dict[str, str]) -> str:
    made = client.post(
        "/v1/threads",
        json={"brand": "Acme Coffee", "title": "t", "message": FIRST, "size": "64x64"},
        headers=creator,
    )
    assert made.status_code == 201, made.text
    wait_job(client, made.json()["messages"][0]["job"]["id"], creator)
    return str(made.json()["id"])


def _follow_up(
    client: TestClient, creator: dict[str, str], thread_id: str, via: str, **fields: Any
) -> Any:
    if via == "messages":
        body = {"content": "add steam", **fields}
        return client.post(f"/v1/threads/{thread_id}/messages", json=body, headers=creator)
    body = {"brief": "add steam", "brand": "Acme Coffee", "thread_id": thread_id, **fields}
    return client.post("/v1/generations", json=body, headers=creator)


@pytest.mark.parametrize("via", ["messages", "generations"])
def test_a_follow_up_naming_what_is_not_here_is_a_404_and_stores_nothing(
    client: TestClient, keys: Keys, acme: dict[str, Any], via: str
) -> None:
    creator = keys["A", "creator"]
    thread_id = _thread(client, creator)
    for fields, named in (
        ({"providers": ["nosuch"]}, "providers names provider(s) nosuch"),
        ({"model": "nosuch/none"}, "unknown model 'nosuch/none'"),
        ({"template": "nosuch"}, "template 'nosuch' does not exist"),
    ):
        sent = _follow_up(client, creator, thread_id, via, **fields)
        problem = assert_problem(sent, 404, "not-found")
        assert problem["detail"].startswith(named), problem
    messages = client.get(f"/v1/threads/{thread_id}", headers=creator).json()["messages"]
    assert [m["content"] for m in messages] == [FIRST]


@pytest.mark.parametrize("via", ["messages", "generations"])
def test_a_follow_ups_allow_list_and_preview_reach_its_run(
    client: TestClient, keys: Keys, acme: dict[str, Any], via: str
) -> None:
    creator = keys["A", "creator"]
    thread_id = _thread(client, creator)
    sent = _follow_up(client, creator, thread_id, via, providers=["procedural"], allow_preview=True)
    assert sent.status_code == 202, sent.text
    job_id = sent.json()["job"]["id"] if via == "messages" else sent.json()["id"]
    job = wait_job(client, job_id, creator)
    run = client.get(f"/v1/runs/{job['run_id']}", headers=creator).json()
    assert run["request"]["providers"] == ["procedural"], run["request"]
    assert run["request"]["allow_preview"] is True
    assert run["request"]["brief"] == f"{FIRST}, steam"
    # the next follow-up names none: any provider, as before (they hold for their own turn)
    after = _follow_up(client, creator, thread_id, "messages")
    assert after.status_code == 202, after.text
    assert after.json()["job"]["id"] != job_id
    again = wait_job(client, after.json()["job"]["id"], creator)
    run = client.get(f"/v1/runs/{again['run_id']}", headers=creator).json()
    assert run["request"]["providers"] is None and run["request"]["allow_preview"] is False
