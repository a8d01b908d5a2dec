"""A job whose template is refused as its run starts (a body rendering past the 20,000-character
cap with the brief), over HTTP on SQLite and PostgreSQL: the job fails with ``bad-input`` 422 as
before, and its run is ``refused`` with the reason (never left ``running``), so resuming it is a
409; a run older code left ``running`` on such a template ends ``refused`` once resumed."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from brandloop.agent.templates import pick_weighted
from brandloop.domain import GenerationRequest
from brandloop.registry import crud
from brandloop.registry.db import Database
from tests.api.http.conftest import Keys, assert_problem, wait_job

#: a brief of about 1,000 characters, within the brief's own limit
LONG_BRIEF = " ".join(["a warm cup of coffee on an oak table by the window"] * 20)
BODY: dict[str, Any] = {
    "brief": LONG_BRIEF,
    "brand": "acme coffee",
    "size": "128x128",
    "budget_usd": 0.05,
    "template": "huge@1",
}


def _huge_template(client: TestClient, keys: Keys) -> None:
    """``huge@1``: the brief a hundred times. It passes the checks on storing (their sample
    brief is short); the long brief renders it past the cap."""
    body = " ".join(["{{ brief }}"] * 100) + " {{ palette_clause }}"
    added = client.post(
        "/v1/templates/huge/versions",
        json={"body": body, "message": "echo"},
        headers=keys["A", "creator"],
    )
    assert added.status_code == 201, added.text


def _refused(client: TestClient, keys: Keys, job: dict[str, Any]) -> None:
    """The job failed as bad input, its run is refused with the reason, and neither can be
    resumed or listed as running."""
    viewer, creator = keys["A", "viewer"], keys["A", "creator"]
    assert job["state"] == "failed", job
    assert job["error"]["type"] == "bad-input" and job["error"]["status"] == 422, job
    assert "template renders" in job["error"]["detail"], job
    run = client.get(f"/v1/runs/{job['run_id']}", headers=viewer)
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "refused", run.json()
    assert "the limit is 20000" in run.json()["reason"], run.json()
    running = client.get("/v1/runs?status=running", headers=viewer)
    assert running.status_code == 200 and running.json() == [], running.text
    assert job["result"]["status"] == "refused", job  # the job carries its run's result
    again = client.post(f"/v1/runs/{job['run_id']}/resume", headers=creator)
    assert "refused" in assert_problem(again, 409, "conflict")["detail"]


def test_a_render_past_the_cap_fails_the_job_and_ends_its_run_refused(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    _huge_template(client, keys)
    answer = client.post("/v1/generations?wait=20", json=BODY, headers=keys["A", "creator"])
    assert answer.status_code in (200, 202), answer.text
    job = wait_job(client, answer.json()["id"], keys["A", "viewer"])
    _refused(client, keys, job)


def test_a_run_left_running_by_older_code_ends_refused_when_resumed(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database
) -> None:
    """Older code stored the run, then its plan refused the template's render and nothing
    ended it: the resume's job fails as bad input and the run ends ``refused``."""
    _huge_template(client, keys)
    request = GenerationRequest(**BODY, tenant="A")
    with db.session() as session:  # the row as older code left it: running, no result
        brand = crud.get_brand(session, tenant="A", ref="acme coffee")
        assert brand is not None
        crud.create_run(
            session,
            run_id="run_0123456789abcdef",
            tenant="A",
            brand_id=brand.id,
            brand_name=brand.name,
            brief=request.brief,
            request=request.model_dump(mode="json"),
        )
    listed = client.get("/v1/runs?status=running", headers=keys["A", "viewer"]).json()
    assert [r["run_id"] for r in listed] == ["run_0123456789abcdef"]
    resumed = client.post("/v1/runs/run_0123456789abcdef/resume", headers=keys["A", "creator"])
    assert resumed.status_code == 202, resumed.text
    job = wait_job(client, resumed.json()["id"], keys["A", "viewer"])
    _refused(client, keys, job)


def test_a_split_label_on_a_rejected_version_leaves_no_run_running(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database
) -> None:
    """The label rows as older code left them: a split over version 1 and a version rejected
    in review since, one where the submission check's fixed id lands on version 1. A job
    whose run id the split sends to the rejected version fails as bad input and its run is
    ``refused``; the others run on version 1."""
    creator, approver = keys["A", "creator"], keys["A", "approver"]
    for body in ("{{ brief }}, {{ palette_clause }}", "{{ brief }}, minimal, {{ palette_clause }}"):
        added = client.post(
            "/v1/templates/banner/versions", json={"body": body, "message": "m"}, headers=creator
        )
        assert added.status_code == 201, added.text
    submitted = client.post("/v1/templates/banner/versions/2/submit", headers=creator)
    assert submitted.status_code == 200, submitted.text
    rejected = client.post(
        "/v1/templates/banner/versions/2/review",
        json={"decision": "reject", "note": "off brand"},
        headers=approver,
    )
    assert rejected.status_code == 200, rejected.text
    weights = {"1": 1.1, "2": 6.9}
    assert pick_weighted(weights, "check") == 1
    with db.session() as session:
        template = crud.get_template(session, tenant="A", name="banner")
        assert template is not None
        crud.set_label(session, template_id=template.id, label="exp", weights=weights, actor="x")
    body = {**BODY, "brief": "an autumn sale banner", "template": "banner:exp"}
    jobs = []
    for _ in range(4):
        answer = client.post("/v1/generations?wait=20", json=body, headers=creator)
        assert answer.status_code in (200, 202), answer.text
        jobs.append(wait_job(client, answer.json()["id"], keys["A", "viewer"]))
    viewer = keys["A", "viewer"]
    running = client.get("/v1/runs?status=running", headers=viewer)
    assert running.status_code == 200 and running.json() == [], running.text
    for job in jobs:
        run = client.get(f"/v1/runs/{job['run_id']}", headers=viewer).json()
        if job["state"] == "failed":
            assert job["error"]["type"] == "bad-input" and job["error"]["status"] == 422, job
            assert "banner@2 was rejected in review" in job["error"]["detail"], job
            assert run["status"] == "refused", run
        else:
            assert job["state"] == "succeeded" and run["status"] in ("succeeded", "partial"), job
