"""Through the real app, a thread's follow-ups as a user writes them (docs/http-api.md,
Threads): "drop X and Y" takes every item named out of the brief and into ``avoid``; and a
brand that asks before spending (conflicts: ask) can be answered - a reply taking the offered
choice runs the asked brief with the brand palette dominant, a reply choosing otherwise
revises the brief as usual."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.settings import Settings
from tests.api.http.conftest import Keys, assert_problem, wait_job

CUP = "a cup of coffee on a marble counter with a croissant and a napkin"
SPOON = "a cup of coffee on a marble counter with a croissant, a napkin and a spoon"
ORANGE = "a coffee cup on an orange table"


def _start(client: TestClient, keys: Keys, message: str, seed: int) -> dict[str, Any]:
    creator = keys["A", "creator"]
    created = client.post(
        "/v1/threads",
        json={"brand": "Acme Coffee", "title": "r", "message": message, "seed": seed},
        headers=creator,
    )
    assert created.status_code == 201, created.text
    thread: dict[str, Any] = created.json()
    wait_job(client, thread["messages"][0]["job"]["id"], creator)
    return thread


def _reply(client: TestClient, keys: Keys, thread_id: str, content: str) -> dict[str, Any]:
    creator = keys["A", "creator"]
    sent = client.post(
        f"/v1/threads/{thread_id}/messages", json={"content": content}, headers=creator
    )
    assert sent.status_code == 202, sent.text
    body: dict[str, Any] = sent.json()
    body["job"] = wait_job(client, body["job"]["id"], creator)
    return body


@pytest.mark.parametrize(
    ("brief", "instruction", "after", "removed"),
    [
        (CUP, "drop the croissant and the napkin", "a cup of coffee on a marble counter", ["croissant", "napkin"]),
        (  # not the cup: Acme Coffee requires a coffee cup in every image (refused, below)
            SPOON,
            "remove the croissant, the napkin and the spoon",
            "a cup of coffee on a marble counter",
            ["croissant", "napkin", "spoon"],
        ),
        (  # the Oxford comma
            SPOON,
            "remove the croissant, the napkin, and the spoon",
            "a cup of coffee on a marble counter",
            ["croissant", "napkin", "spoon"],
        ),
        (CUP, "drop the croissant and add steam", "a cup of coffee on a marble counter with a napkin, steam", ["croissant"]),
    ],
)  # fmt: skip
def test_a_follow_up_drops_every_item_it_lists(
    client: TestClient,
    keys: Keys,
    acme: dict[str, Any],
    brief: str,
    instruction: str,
    after: str,
    removed: list[str],
) -> None:
    thread = _start(client, keys, brief, seed=9)
    message = _reply(client, keys, thread["id"], instruction)
    edit = message["message"]["edit"]
    assert edit["after"] == after
    assert edit["removed"] == removed and edit["avoid"] == removed
    images = message["job"]["result"]["images"]
    assert images and all(term in images[0]["negative_prompt"] for term in removed)
    assert not any(term in edit["after"] for term in removed)


@pytest.mark.parametrize(
    "instruction", ["remove the croissant, the napkin and the cup", "drop the coffee", "no cups"]
)
def test_a_follow_up_cannot_take_out_what_the_brand_requires(
    client: TestClient, keys: Keys, acme: dict[str, Any], instruction: str
) -> None:
    """Acme Coffee requires "coffee cup" in every image: a follow-up taking the cup out would
    ask for it and avoid it in one call (outside tester); it is a 422 naming both, nothing
    stored, and the thread goes on."""
    thread = _start(client, keys, CUP, seed=9)
    creator = keys["A", "creator"]
    url = f"/v1/threads/{thread['id']}/messages"
    refused = client.post(url, json={"content": instruction}, headers=creator)
    problem = assert_problem(refused, 422, "validation")
    assert "requires 'coffee cup' in every image" in problem["detail"], problem
    shown = client.get(f"/v1/threads/{thread['id']}", headers=creator).json()
    assert len(shown["messages"]) == 1, shown
    assert _reply(client, keys, thread["id"], "drop the croissant")["message"]["edit"]["avoid"] == [
        "croissant"
    ]


def _ask(settings: Settings) -> None:
    folder = settings.data_dir / "policies"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acme-coffee.yaml").write_text("conflicts: ask\n", encoding="utf-8")


def test_answering_the_clarification_with_the_offer_proceeds(
    client: TestClient, keys: Keys, acme: dict[str, Any], settings: Settings
) -> None:
    _ask(settings)
    thread = _start(client, keys, ORANGE, seed=4)
    convo = client.get(f"/v1/threads/{thread['id']}", headers=keys["A", "creator"]).json()
    question = convo["messages"][0]["reply"]
    assert "orange" in question and "keep the Acme Coffee palette" in question

    answer = "Yes, keep the Acme Coffee palette and use orange only as a small accent"
    message = _reply(client, keys, thread["id"], answer)
    assert message["message"]["brief"] == ORANGE  # the answer is not a clause of the brief
    job = message["job"]
    assert job["state"] == "succeeded", job
    result = job["result"]
    assert result["status"] != "refused" and not result.get("clarification")
    assert result["attempts"] > 0 and result["images"]
    preflight = [d for d in result["decisions"] if d["node"] == "preflight"]
    assert [d["action"] for d in preflight] == ["adapt"]
    assert answer in preflight[0]["reason"] and "orange become accents" in preflight[0]["reason"]
    convo = client.get(f"/v1/threads/{thread['id']}", headers=keys["A", "creator"]).json()
    assert convo["messages"][-1]["reply"] != question


def test_a_reply_choosing_otherwise_revises_the_brief(
    client: TestClient, keys: Keys, acme: dict[str, Any], settings: Settings
) -> None:
    _ask(settings)
    thread = _start(client, keys, ORANGE, seed=4)
    message = _reply(client, keys, thread["id"], "drop the orange and make it teal instead")
    edit = message["message"]["edit"]
    assert edit is not None and edit["removed"] == ["orange"]
    assert "orange" not in edit["after"] and "teal" in edit["after"]
    # the question was answered by changing the brief: the teal brief fits the kit
    assert message["job"]["result"]["status"] != "refused"
    # a question is open only until the next message: "yes" now is an ordinary follow-up,
    # an acknowledgement asking for no change (it was pasted into the brief: outside tester)
    later = client.post(
        f"/v1/threads/{thread['id']}/messages",
        json={"content": "yes"},
        headers=keys["A", "creator"],
    )
    problem = assert_problem(later, 422, "validation")
    assert "asks for no change" in problem["detail"] and "still open" not in problem["detail"]
    convo = client.get(f"/v1/threads/{thread['id']}", headers=keys["A", "creator"]).json()
    assert len(convo["messages"]) == 2


def test_a_sizes_question_offers_the_nearest_format_and_yes_takes_it(
    client: TestClient, keys: Keys, acme: dict[str, Any], settings: Settings
) -> None:
    """A size none of the brand's formats has was asked about with the palette's offer ("keep
    the palette and use those only as small accents") that had nothing to do with it; the
    question offers the nearest format, and "yes" runs at it (outside tester)."""
    _ask(settings)
    creator = keys["A", "creator"]
    body = {"brand": "Acme Coffee", "message": "a coffee cup on a table", "size": "96x128"}
    created = client.post("/v1/threads", json=body | {"seed": 4}, headers=creator)
    assert created.status_code == 201, created.text
    thread = created.json()
    wait_job(client, thread["messages"][0]["job"]["id"], creator)
    convo = client.get(f"/v1/threads/{thread['id']}", headers=creator).json()
    assert convo["messages"][0]["reply"] == (
        "Before I spend anything: 96x128 is not one of Acme Coffee's formats (1024x1024, "
        "1200x628). Should I use the nearest Acme Coffee format, 1024x1024, instead, or keep "
        "96x128?"
    )
    message = _reply(client, keys, thread["id"], "yes")
    assert message["message"]["edit"] is None and message["message"]["brief"] == body["message"]
    result = message["job"]["result"]
    assert result["status"] != "refused" and not result.get("clarification"), result
    run = client.get(f"/v1/runs/{message['job']['run_id']}", headers=creator).json()
    assert run["request"]["size"] == "1024x1024" and run["request"]["answer"] == "yes"


def test_a_sizes_question_answered_keep_runs_at_the_size_asked(
    client: TestClient, keys: Keys, acme: dict[str, Any], settings: Settings
) -> None:
    _ask(settings)
    creator = keys["A", "creator"]
    body = {"brand": "Acme Coffee", "message": "a coffee cup on a table", "size": "96x128"}
    created = client.post("/v1/threads", json=body, headers=creator)
    assert created.status_code == 201, created.text
    thread = created.json()
    wait_job(client, thread["messages"][0]["job"]["id"], creator)
    message = _reply(client, keys, thread["id"], "keep 96x128")
    assert message["message"]["edit"] is None and message["message"]["brief"] == body["message"]
    result = message["job"]["result"]
    preflight = [d for d in result["decisions"] if d["node"] == "preflight"]
    assert [d["action"] for d in preflight] == ["adapt"], preflight
    assert "kept as asked" in preflight[0]["reason"]
    run = client.get(f"/v1/runs/{message['job']['run_id']}", headers=creator).json()
    assert run["request"]["size"] == "96x128"
