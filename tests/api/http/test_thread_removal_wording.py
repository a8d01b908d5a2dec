"""A follow-up that removes something takes it out of the brief the next run renders, through
``POST /v1/threads/{id}/messages`` on SQLite and PostgreSQL: "no snow" takes the snowy ridge
with it (an outside tester's thread kept "a snowy ridge" and only added snow to the negative
prompt; the image came back 55% white), and a preposition left joining nothing goes too."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, wait_job


def test_a_removal_takes_the_words_made_from_it_out_of_the_next_runs_brief(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    creator = keys["A", "creator"]
    made = client.post(
        "/v1/threads",
        json={
            "brand": "Acme Coffee",
            "title": "hike",
            "message": "a barista in an orange apron with a red ball on a snowy terrace",
            "size": "64x64",
        },
        headers=creator,
    )
    assert made.status_code == 201, made.text
    thread_id = made.json()["id"]
    wait_job(client, made.json()["messages"][0]["job"]["id"], creator)

    sent = client.post(
        f"/v1/threads/{thread_id}/messages",
        json={"content": "no snow, drop the orange apron and the ball"},
        headers=creator,
    )
    assert sent.status_code == 202, sent.text
    job = wait_job(client, sent.json()["job"]["id"], creator)
    convo = client.get(f"/v1/threads/{thread_id}", headers=creator).json()
    turn = convo["messages"][-1]
    assert turn["brief"] == "a barista on a terrace", turn
    assert turn["edit"]["avoid"] == ["snow", "orange apron", "ball"], turn["edit"]
    run = client.get(f"/v1/runs/{job['run_id']}", headers=creator).json()
    assert run["request"]["brief"] == "a barista on a terrace", run["request"]


@pytest.mark.parametrize("mark", ["?", "*", "(", "+", "|", "$"])
def test_a_follow_up_ending_in_punctuation_removes_the_thing_and_is_no_500(
    client: TestClient, keys: Keys, acme: dict[str, Any], mark: str
) -> None:
    """An outside tester's "can you drop the croissant?" was a 500 (re.error: nothing to
    repeat), and the croissant stayed in the brief."""
    creator = keys["A", "creator"]
    first = "a coffee cup and a croissant on a table"
    made = client.post(
        "/v1/threads",
        json={"brand": "Acme Coffee", "title": "t", "message": first, "size": "64x64"},
        headers=creator,
    )
    assert made.status_code == 201, made.text
    thread_id = made.json()["id"]
    wait_job(client, made.json()["messages"][0]["job"]["id"], creator)

    sent = client.post(
        f"/v1/threads/{thread_id}/messages",
        json={"content": f"can you drop the croissant{mark}"},
        headers=creator,
    )
    assert sent.status_code == 202, sent.text
    message = sent.json()["message"]
    assert message["brief"] == "a coffee cup on a table", message
    assert message["edit"]["removed"] == ["croissant"], message["edit"]
    job = wait_job(client, sent.json()["job"]["id"], creator)
    run = client.get(f"/v1/runs/{job['run_id']}", headers=creator).json()
    assert run["request"]["brief"] == "a coffee cup on a table"
    assert run["request"]["avoid"] == ["croissant"], run["request"]


def test_each_line_is_an_instruction_and_a_plural_removes_its_singular(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    """An outside tester's "add steam <new line> drop the croissant" appended it all as one
    clause, and "drop the croissants" left "a croissant" in the brief, saying it was removed."""
    creator = keys["A", "creator"]
    first = "a coffee cup, a croissant and a napkin on a table"
    made = client.post(
        "/v1/threads", json={"brand": "Acme Coffee", "message": first}, headers=creator
    )
    assert made.status_code == 201, made.text
    thread_id = made.json()["id"]
    briefs = []
    for content in ("drop the croissants", "add steam\ndrop the napkin"):
        sent = client.post(
            f"/v1/threads/{thread_id}/messages", json={"content": content}, headers=creator
        )
        assert sent.status_code == 202, sent.text
        briefs.append(sent.json()["message"]["brief"])
        wait_job(client, sent.json()["job"]["id"], creator)
    assert briefs == ["a coffee cup and a napkin on a table", "a coffee cup on a table, steam"]
