"""``POST /v1/generations`` with a ``thread_id`` is a follow-up of that thread, which is about
one brand: a body whose ``brand`` names another brand is a 409 ``conflict`` with nothing stored
(an outside tester's body said "Bloom Skincare", answered 200 and ran under Acme Coffee); any
spelling of the thread's own brand is a follow-up as before (docs/http-api.md, Endpoints)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem, brand_kit, wait_job


def test_a_follow_up_naming_another_brand_is_a_409_and_stores_nothing(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    admin, creator = keys["A", "admin"], keys["A", "creator"]
    assert client.post("/v1/brands", json=brand_kit("bloom-skincare"), headers=admin).is_success
    made = client.post(
        "/v1/threads", json={"brand": "Acme Coffee", "title": "probe"}, headers=creator
    )
    assert made.status_code == 201, made.text
    thread_id = made.json()["id"]

    def follow_up(brand: str) -> Any:
        body = {"brief": "a cup, warmer", "brand": brand, "thread_id": thread_id}
        return client.post("/v1/generations", json={**body, "size": "64x64"}, headers=creator)

    for other in ("Bloom Skincare", "bloom_skincare", "Nordlys Outdoor"):
        problem = assert_problem(follow_up(other), 409, "conflict")
        assert "Acme Coffee" in problem["detail"] and other in problem["detail"]
    # nothing stored: no message in the thread, no job, no run
    assert client.get(f"/v1/threads/{thread_id}", headers=creator).json()["messages"] == []
    assert client.get("/v1/jobs", headers=creator).json() == []
    assert client.get("/v1/runs", headers=creator).json() == []

    # the thread's own brand, by its name spelt any way or by its id, is a follow-up
    for same in ("Acme Coffee", "acme_COFFEE", acme["id"]):
        answer = follow_up(same)
        assert answer.status_code == 202, answer.text
        job = wait_job(client, answer.json()["id"], creator)
        assert job["thread_id"] == thread_id and job["result"]["brand"] == "Acme Coffee"
    messages = client.get(f"/v1/threads/{thread_id}", headers=creator).json()["messages"]
    assert len(messages) == 3
