"""``POST /v1/generations`` with a ``thread_id`` is a follow-up of that thread, which is about
one brand: a body whose ``brand`` names another brand is a 409 ``conflict`` with nothing stored
(an outside tester's body said "Bloom Skincare", answered 200 and ran under Acme Coffee); any
spelling of the thread's own brand is a follow-up as before (docs/http-api.md, Endpoints).
The thread keeps its brand by id, so it follows a rename and no namesake takes it over
(docs/http-api.md, Threads)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from brandloop.registry.db import Database
from brandloop.registry.models_service import ThreadRow
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


def test_a_thread_follows_its_brand_through_a_rename_and_no_namesake_takes_it(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    """A thread keeps its brand by id (docs/http-api.md, Threads): after the brand is renamed
    a follow-up naming the new name, or none, runs under it (both were refused: the thread
    kept only the old name), and a new brand that takes the old name does not take the thread
    - a follow-up naming it is a 409 with nothing stored."""
    admin, creator = keys["A", "admin"], keys["A", "creator"]
    made = client.post(
        "/v1/threads",
        json={"brand": "Acme Coffee", "title": "t", "message": "a coffee cup", "size": "64x64"},
        headers=creator,
    )
    assert made.status_code == 201, made.text
    thread_id = made.json()["id"]
    assert made.json()["brand_id"] == acme["id"]
    wait_job(client, made.json()["messages"][0]["job"]["id"], creator)
    renamed = client.post(
        f"/v1/brands/{acme['id']}/rename", json={"name": "Acme Roasters"}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text

    def generation(brand: str, brief: str) -> Any:
        body = {"brief": brief, "brand": brand, "thread_id": thread_id, "size": "64x64"}
        return client.post("/v1/generations", json=body, headers=creator)

    def ran_under_the_thread_brand(answer: Any) -> None:
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job"]["id"] if "message" in answer.json() else answer.json()["id"]
        job = wait_job(client, job_id, creator)
        # it ran under the brand (whether the agent accepted an image or stopped as unpromising
        # is the agent's business, not the thread's)
        result = job["result"] or {}
        assert result.get("brand") == "Acme Roasters", (job["error"], result)
        assert result["status"] != "refused" and result["attempts"] > 0, result

    # the new name (any spelling, or the id), and a follow-up naming no brand
    ran_under_the_thread_brand(generation("acme roasters", "add steam"))
    ran_under_the_thread_brand(generation(acme["id"], "warmer"))
    ran_under_the_thread_brand(
        client.post(
            f"/v1/threads/{thread_id}/messages", json={"content": "add a saucer"}, headers=creator
        )
    )
    listed = client.get("/v1/threads", headers=creator).json()
    assert [(t["id"], t["brand"], t["brand_id"]) for t in listed] == [
        (thread_id, "Acme Roasters", acme["id"])
    ]

    # a new brand under the old name: it is not the thread's brand
    newcomer = client.post("/v1/brands", json=brand_kit(), headers=admin)
    assert newcomer.status_code == 201, newcomer.text
    assert newcomer.json()["id"] != acme["id"]
    before = client.get(f"/v1/threads/{thread_id}", headers=creator).json()
    jobs = client.get("/v1/jobs", headers=creator).json()
    for name in ("Acme Coffee", "acme_coffee", newcomer.json()["id"]):
        problem = assert_problem(generation(name, "add a spoon"), 409, "conflict")
        assert "Acme Roasters" in problem["detail"] and name in problem["detail"]
    assert client.get(f"/v1/threads/{thread_id}", headers=creator).json() == before
    assert client.get("/v1/jobs", headers=creator).json() == jobs
    ran_under_the_thread_brand(
        client.post(
            f"/v1/threads/{thread_id}/messages", json={"content": "add a spoon"}, headers=creator
        )
    )
    convo = client.get(f"/v1/threads/{thread_id}", headers=creator).json()
    assert (convo["brand"], convo["brand_id"]) == ("Acme Roasters", acme["id"])
    assert len(convo["messages"]) == 5


def test_a_thread_whose_brand_cannot_be_told_refuses_follow_ups(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database
) -> None:
    """A thread from before threads kept their brand's id, whose brand migration 0950 could not
    tell from its name (``brand_id`` NULL): its follow-ups are a 409 with nothing stored, never
    run under whichever brand has that name now; the thread is still shown."""
    creator = keys["A", "creator"]
    made = client.post(
        "/v1/threads", json={"brand": "Acme Coffee", "title": "old"}, headers=creator
    )
    assert made.status_code == 201, made.text
    thread_id = made.json()["id"]
    with db.session() as session:
        session.execute(sa.update(ThreadRow).values(brand_id=None))
        session.commit()
    shown = client.get(f"/v1/threads/{thread_id}", headers=creator).json()
    assert (shown["brand"], shown["brand_id"]) == ("Acme Coffee", None)
    for answer in (
        client.post(
            f"/v1/threads/{thread_id}/messages", json={"content": "add steam"}, headers=creator
        ),
        client.post(
            "/v1/generations",
            json={"brief": "add steam", "brand": "Acme Coffee", "thread_id": thread_id},
            headers=creator,
        ),
    ):
        problem = assert_problem(answer, 409, "conflict")
        assert "Acme Coffee" in problem["detail"] and "nothing was stored" in problem["detail"]
    assert client.get(f"/v1/threads/{thread_id}", headers=creator).json() == shown
    assert client.get("/v1/jobs", headers=creator).json() == []
