"""A refused turn in a thread, through the real app on SQLite and PostgreSQL (docs/http-api.md,
Threads): a follow-up whose run is refused (a forbidden term, the brand's conflict policy
``refuse``) stays in the thread's history as refused, with its reason, but the next follow-up
edits the brief of the last turn that was not refused - an outside tester's thread refused
every follow-up after the first refusal, each carrying the refused brief along."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.settings import Settings
from tests.api.http.conftest import Keys, wait_job

FIRST = "a croissant beside a coffee cup on a marble counter"


def _turn(client: TestClient, keys: Keys, thread_id: str, content: str, via: str) -> Any:
    """A follow-up through ``POST /v1/threads/{id}/messages`` or ``POST /v1/generations``,
    answered 202; its job once finished."""
    creator = keys["A", "creator"]
    if via == "messages":
        sent = client.post(
            f"/v1/threads/{thread_id}/messages", json={"content": content}, headers=creator
        )
        assert sent.status_code == 202, sent.text
        job_id = sent.json()["job"]["id"]
    else:
        body = {"brief": content, "brand": "Acme Coffee", "thread_id": thread_id}
        sent = client.post("/v1/generations", json=body, headers=creator)
        assert sent.status_code == 202, sent.text
        job_id = sent.json()["id"]
    return wait_job(client, job_id, creator)


@pytest.mark.parametrize(
    ("refused", "policy", "reason"),
    [
        ("add a jar of instant coffee", None, "instant coffee"),
        ("add a magenta saucer", "conflicts: refuse\n", "magenta"),
    ],
)
@pytest.mark.parametrize("via", ["messages", "generations"])
def test_a_refused_follow_up_is_kept_as_refused_and_not_carried_on(
    client: TestClient,
    keys: Keys,
    acme: dict[str, Any],
    settings: Settings,
    refused: str,
    policy: str | None,
    reason: str,
    via: str,
) -> None:
    if policy is not None:
        folder = settings.data_dir / "policies"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "acme-coffee.yaml").write_text(policy, encoding="utf-8")
    creator = keys["A", "creator"]
    made = client.post(
        "/v1/threads",
        json={"brand": "Acme Coffee", "title": "t", "message": FIRST, "size": "64x64"},
        headers=creator,
    )
    assert made.status_code == 201, made.text
    thread_id = made.json()["id"]
    first = wait_job(client, made.json()["messages"][0]["job"]["id"], creator)
    assert first["result"]["status"] != "refused", first

    no = _turn(client, keys, thread_id, refused, via)
    assert no["result"]["status"] == "refused", no
    assert reason in no["result"]["reason"], no
    # the refusal is in the thread's history, with its reason
    convo = client.get(f"/v1/threads/{thread_id}", headers=creator).json()
    turn = convo["messages"][1]
    assert turn["content"] == refused and reason in turn["brief"]
    assert turn["refused"] == no["result"]["reason"], turn

    # the next follow-up edits the brief before the refusal, and runs
    yes = _turn(client, keys, thread_id, "add steam", via)
    # it ran (accepting an image or stopping as unpromising is the agent's business)
    assert yes["result"]["status"] != "refused" and yes["result"]["attempts"] > 0, yes["result"]
    convo = client.get(f"/v1/threads/{thread_id}", headers=creator).json()
    messages = convo["messages"]
    assert [m["content"] for m in messages] == [FIRST, refused, "add steam"]
    assert messages[2]["edit"]["before"] == messages[0]["brief"] == FIRST
    assert messages[2]["brief"] == f"{FIRST}, steam" and reason not in messages[2]["brief"]
    assert messages[2]["refused"] is None and messages[0]["refused"] is None
    # nothing stored is lost: the refused turn keeps its text, brief, job and reason
    assert messages[1] == {**turn, "job": messages[1]["job"]}
    assert messages[1]["refused"] == no["result"]["reason"]
    assert messages[1]["job"]["id"] == no["id"]


def test_a_refused_reply_leaves_the_brands_question_open(
    client: TestClient, keys: Keys, acme: dict[str, Any], settings: Settings
) -> None:
    """Under ``conflicts: ask`` the question is not a refusal; a reply to it whose run is
    refused is passed over, so the question is still open: "yes" then takes its offer."""
    folder = settings.data_dir / "policies"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acme-coffee.yaml").write_text("conflicts: ask\n", encoding="utf-8")
    creator = keys["A", "creator"]
    orange = "a coffee cup on an orange table"
    made = client.post(
        "/v1/threads",
        json={"brand": "Acme Coffee", "title": "t", "message": orange, "seed": 4},
        headers=creator,
    )
    assert made.status_code == 201, made.text
    thread_id = made.json()["id"]
    asked = wait_job(client, made.json()["messages"][0]["job"]["id"], creator)
    assert asked["result"]["clarification"], asked

    no = _turn(client, keys, thread_id, "add a jar of instant coffee", "messages")
    assert no["result"]["status"] == "refused" and "instant coffee" in no["result"]["reason"]
    yes = _turn(client, keys, thread_id, "yes", "messages")
    assert yes["result"]["status"] != "refused" and yes["result"]["attempts"] > 0, yes["result"]
    preflight = [d for d in yes["result"]["decisions"] if d["node"] == "preflight"]
    assert [d["action"] for d in preflight] == ["adapt"], preflight
    messages = client.get(f"/v1/threads/{thread_id}", headers=creator).json()["messages"]
    assert [m["refused"] for m in messages] == [None, no["result"]["reason"], None]
    assert messages[2]["brief"] == orange and messages[2]["edit"] is None
