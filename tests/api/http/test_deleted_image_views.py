"""An image whose bytes its tenant deleted (``DELETE /v1/artifacts/{sha256}``) is shown deleted
wherever its run's images are listed, exactly as ``GET /v1/runs/{id}`` shows it: the job, a
thread's message, a campaign's asset (whose consistency no longer counts it); deletes of one
run's images at once each leave their mark; and a run waiting for review never delivers an
image deleted while it waited (on both databases, and with another tenant still holding the
same bytes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, both_databases, brand_kit, wait_job

settings = pytest.fixture(name="settings")(both_databases)

GEN = {
    "brief": "a cold brew in a tall glass",
    "brand": "Acme Coffee",
    "size": "256x256",
    "providers": ["procedural"],
}
#: what GET /v1/runs/{id} says of a deleted image (docs/http-api.md)
MARK = ("path", "deleted", "deleted_at")


def _marks(image: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(image[field] for field in MARK)


def _deleted(client: TestClient, admin: dict[str, str], sha: str) -> None:
    response = client.delete(f"/v1/artifacts/{sha}", headers=admin)
    assert response.status_code == 204, response.text


def test_the_job_shows_a_deleted_image_as_the_run_does(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    admin, viewer = keys["A", "admin"], keys["A", "viewer"]
    job = client.post("/v1/generations?wait=120", json={**GEN, "seed": 5}, headers=admin).json()
    assert job["state"] == "succeeded", job
    sha = job["result"]["images"][0]["sha256"]
    assert job["result"]["images"][0]["path"] == f"/v1/artifacts/{sha}"
    _deleted(client, admin, sha)

    run = client.get(f"/v1/runs/{job['run_id']}", headers=viewer).json()
    shown = client.get(f"/v1/jobs/{job['id']}", headers=viewer).json()
    image = shown["result"]["images"][0]
    assert image["sha256"] == sha and image["deleted"] is True and image["path"] is None, image
    assert image["deleted_at"] is not None
    assert _marks(image) == _marks(run["images"][0])
    listed = client.get("/v1/jobs", headers=viewer).json()
    assert [_marks(i) for i in listed[0]["result"]["images"]] == [_marks(image)]
    assert f"/v1/artifacts/{sha}" not in client.get(f"/v1/jobs/{job['id']}", headers=viewer).text


def test_a_replayed_submission_shows_a_deleted_image_as_the_job_does(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    """The same ``POST ...?wait=`` with its ``Idempotency-Key`` after the delete: the first
    answer again, with the image marked deleted as a fresh GET of the job marks it."""
    admin, viewer = keys["A", "admin"], keys["A", "viewer"]
    post = {"url": "/v1/generations?wait=120", "json": {**GEN, "seed": 7},
            "headers": {**admin, "Idempotency-Key": "replay-after-delete"}}  # fmt: skip
    first = client.post(**post)
    job = first.json()
    assert job["state"] == "succeeded", job
    sha = job["result"]["images"][0]["sha256"]
    assert client.post(**post).content == first.content  # a replay before the delete: as given
    _deleted(client, admin, sha)

    replayed = client.post(**post)
    assert replayed.status_code == first.status_code, replayed.text
    assert replayed.headers["idempotent-replayed"] == "true"
    assert f"/v1/artifacts/{sha}" not in replayed.text
    fresh = client.get(f"/v1/jobs/{job['id']}", headers=viewer).json()
    again = replayed.json()
    assert again["result"]["images"] == fresh["result"]["images"]
    assert again["result"]["images"][0]["deleted"] is True
    assert {k: v for k, v in again.items() if k != "result"} == {
        k: v for k, v in job.items() if k != "result"
    }  # the first answer otherwise, as it was


def test_a_threads_message_shows_its_deleted_image(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    admin, creator = keys["A", "admin"], keys["A", "creator"]
    body = {"brand": "Acme Coffee", "message": "a cold brew in a tall glass", "size": "256x256"}
    started = client.post("/v1/threads", json=body, headers=creator)
    assert started.status_code in (200, 201, 202), started.text
    thread = started.json()
    job_id = thread["messages"][0]["job"]["id"]
    job = wait_job(client, job_id, creator, timeout=120)
    assert job["state"] == "succeeded", job
    sha = job["result"]["images"][0]["sha256"]
    _deleted(client, admin, sha)

    shown = client.get(f"/v1/threads/{thread['id']}", headers=creator).json()
    image = shown["messages"][0]["job"]["result"]["images"][0]
    assert image["deleted"] is True and image["path"] is None and image["deleted_at"], image


def test_a_campaigns_asset_shows_its_deleted_image_and_measures_the_rest(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    admin, creator = keys["A", "admin"], keys["A", "creator"]
    body = {
        "name": "autumn",
        "brand": "Acme Coffee",
        "budget_usd": 0.5,
        "assets": [{"brief": "a steaming cup", "formats": ["128x128", "1:1"], "count": 1}],
    }
    campaign = client.post("/v1/campaigns", json=body, headers=creator).json()
    for asset in campaign["assets"]:
        assert wait_job(client, asset["job"]["id"], creator, timeout=120)["state"] == "succeeded"
    path = f"/v1/campaigns/{campaign['id']}"
    before = client.get(path, headers=creator).json()
    assert before["consistency"]["images"] == 2, before["consistency"]
    first = before["assets"][0]["job"]["result"]["images"][0]["sha256"]
    _deleted(client, admin, first)

    after = client.get(path, headers=creator).json()
    image = after["assets"][0]["job"]["result"]["images"][0]
    assert image["sha256"] == first and image["deleted"] is True and image["path"] is None
    assert after["assets"][1]["job"]["result"]["images"][0]["deleted"] is False
    # one image left: not measured, never a figure that still counts the deleted one
    assert after["consistency"] == {"images": 1, "palette_spread": None, "descriptor_spread": None}


def test_deleting_a_runs_images_at_once_marks_each(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    admin, viewer = keys["A", "admin"], keys["A", "viewer"]
    job = client.post(
        "/v1/generations?wait=120", json={**GEN, "seed": 11, "count": 4}, headers=admin
    ).json()
    shas = [i["sha256"] for i in (job.get("result") or {}).get("images", [])]
    assert len(shas) >= 2, job  # enough images for deletes to race
    with ThreadPoolExecutor(len(shas)) as pool:
        answers = list(
            pool.map(lambda sha: client.delete(f"/v1/artifacts/{sha}", headers=admin), shas)
        )
    assert [a.status_code for a in answers] == [204] * len(shas), [a.text for a in answers]
    run = client.get(f"/v1/runs/{job['run_id']}", headers=viewer).json()
    shown = client.get(f"/v1/jobs/{job['id']}", headers=viewer).json()
    for images in (shown["result"]["images"], run["images"]):
        assert [(i["sha256"], i["deleted"], i["path"]) for i in images] == [
            (s, True, None) for s in shas
        ]
        assert all(i["deleted_at"] for i in images)


@pytest.fixture
def reviewing(
    make_client: Callable[..., TestClient], keys: Keys, tmp_path: Path, monkeypatch: Any
) -> TestClient:
    """A client whose agent policy sends every run to review; tenants A and B have the brand."""
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    client = make_client()
    for tenant in ("A", "B"):
        made = client.post("/v1/brands", json=brand_kit(), headers=keys[tenant, "admin"])
        assert made.status_code == 201, made.text
    return client


def _held(client: TestClient, keys: Keys, tenant: str) -> tuple[dict[str, Any], str]:
    """A run of ``tenant`` waiting for review, and the image it holds for the verdict."""
    job = client.post(
        "/v1/generations?wait=120", json={**GEN, "seed": 21}, headers=keys[tenant, "creator"]
    ).json()
    assert job["state"] == "awaiting_review", job
    trace = client.get(f"/v1/runs/{job['run_id']}/trace", headers=keys[tenant, "viewer"]).json()
    held = [a["artifact_sha256"] for a in trace["attempts"] if a["outcome"] == "accepted"]
    assert len(held) == 1, trace["attempts"]
    return job, held[0]


@pytest.mark.parametrize("others_copy", [False, True], ids=["alone", "another-tenant-has-it"])
def test_an_image_deleted_while_its_run_waits_for_review_is_not_delivered(
    reviewing: TestClient, keys: Keys, others_copy: bool
) -> None:
    client = reviewing
    job, sha = _held(client, keys, "A")
    if others_copy:  # the same bytes are B's too: the file stays on disk for B
        other, same = _held(client, keys, "B")
        assert same == sha, "the preview renderer made other bytes for B"
    _deleted(client, keys["A", "admin"], sha)

    # an approval is of every image the reviewer saw: with one deleted it is refused (also
    # when another tenant's copy of the bytes is still on disk), and the run still waits
    verdict = client.post(
        f"/v1/review/runs/{job['run_id']}",
        json={"decision": "approve", "note": "ship it"},
        headers=keys["A", "approver"],
    )
    assert verdict.status_code == 409 and sha in verdict.json()["detail"], verdict.text
    assert client.get(f"/v1/jobs/{job['id']}", headers=keys["A", "viewer"]).json()["state"] == (
        "awaiting_review"
    )
    rejected = client.post(
        f"/v1/review/runs/{job['run_id']}",
        json={"decision": "reject", "note": "its image was deleted"},
        headers=keys["A", "approver"],
    )
    assert rejected.status_code == 200, rejected.text
    run = client.get(f"/v1/runs/{job['run_id']}", headers=keys["A", "viewer"]).json()
    assert run["status"] == "failed", run
    assert all(image["deleted"] and image["path"] is None for image in run["images"]), run
    trace = client.get(f"/v1/runs/{job['run_id']}/trace", headers=keys["A", "viewer"]).json()
    assert trace["receipts"] == []
    if others_copy:  # B's run still has its image, and delivers it
        approved = client.post(
            f"/v1/review/runs/{other['run_id']}",
            json={"decision": "approve"},
            headers=keys["B", "approver"],
        )
        assert approved.status_code == 200 and approved.json()["status"] == "succeeded"


def test_a_threads_turn_waiting_for_review_counts_the_images_it_holds(
    reviewing: TestClient, keys: Keys
) -> None:
    """The API's reply line for a turn waiting for review counts the images its run holds for
    the verdict, as the studio's thread page does: it said "0 image(s)" (outside tester)."""
    creator = keys["A", "creator"]
    body = {"brand": "Acme Coffee", "message": GEN["brief"], "size": "256x256", "count": 2}
    thread = reviewing.post("/v1/threads", json=body, headers=creator).json()
    job_id = thread["messages"][0]["job"]["id"]
    deadline = time.monotonic() + 120
    job = reviewing.get(f"/v1/jobs/{job_id}", headers=creator).json()
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = reviewing.get(f"/v1/jobs/{job_id}", headers=creator).json()
    assert job["state"] == "awaiting_review", job
    trace = reviewing.get(f"/v1/runs/{job['run_id']}/trace", headers=creator).json()
    held = {a["artifact_sha256"] for a in trace["attempts"] if a["outcome"] == "accepted"}
    assert len(held) == 2, trace["attempts"]
    shown = reviewing.get(f"/v1/threads/{thread['id']}", headers=creator).json()
    assert shown["messages"][0]["reply"].startswith("awaiting_review: 2 image(s), $"), shown
