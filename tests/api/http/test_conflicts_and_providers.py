"""Through the real app: a brand that asks before spending answers a thread with its question;
the provider allow-list and the preview flag travel in the API's bodies."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from brandloop.settings import Settings
from tests.api.http.conftest import Keys, assert_problem, wait_job


def test_a_thread_gets_a_clarifying_reply_instead_of_spending(
    client: TestClient, keys: Keys, acme: dict[str, Any], settings: Settings
) -> None:
    folder = settings.data_dir / "policies"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acme-coffee.yaml").write_text("conflicts: ask\n", encoding="utf-8")
    creator = keys["A", "creator"]
    created = client.post(
        "/v1/threads",
        json={
            "brand": "Acme Coffee",
            "message": "a spring menu card in pastel pink and lavender",
            "size": "256x256",
        },
        headers=creator,
    )
    assert created.status_code == 201, created.text
    thread = created.json()
    job = wait_job(client, thread["messages"][0]["job"]["id"], creator)
    assert job["result"]["cost_usd"] == 0 and job["result"]["attempts"] == 0
    assert job["result"]["clarification"].endswith("?")
    convo = client.get(f"/v1/threads/{thread['id']}", headers=creator).json()
    reply = convo["messages"][0]["reply"]
    assert reply == job["result"]["clarification"]
    assert "pink" in reply and "lavender" in reply


def test_generations_take_an_allow_list_and_report_previews(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    creator = keys["A", "creator"]
    body = {"brief": "a teal cup", "brand": "Acme Coffee", "size": "256x256", "seed": 4}
    done = client.post(
        "/v1/generations?wait=60", json={**body, "providers": ["procedural"]}, headers=creator
    )
    assert done.status_code == 200, done.text
    images = done.json()["result"]["images"]
    assert images and all(image["preview"] is True for image in images)
    for providers, status, kind in (
        (["stability"], 404, "not-found"),  # not configured here: like an unknown brand
        (["Not A Name"], 422, "validation"),
        ([], 422, "validation"),
    ):
        bad = client.post("/v1/generations", json={**body, "providers": providers}, headers=creator)
        assert_problem(bad, status, kind)
        if status == 404:  # the API's message names its field, never the CLI's flag
            detail = bad.json()["detail"]
            assert detail.startswith("providers names provider(s) stability"), detail
            assert "--" not in detail
