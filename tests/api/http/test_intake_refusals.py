"""A request whose template is refused for its run (a body rendering past the 20,000-character
cap with the brief, or a label's split sending its run id to such a version), over HTTP on
SQLite and PostgreSQL: ``POST /v1/generations`` (and ``/v1/threads``, ``/v1/campaigns``) is a
422 ``bad-input`` problem with nothing stored - no job, no run, no thread, no quota held -
whatever a request before it with a shorter brief was told. A run older code left ``running`` on
such a template ends ``refused`` once resumed, and its job fails as bad input."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from brandloop.agent.templates import pick_weighted
from brandloop.domain import GenerationRequest
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.registry.models import RunRow
from brandloop.registry.models_money import SpendReservationRow
from brandloop.registry.models_service import CampaignRow, JobRow, ThreadRow
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


def _stored(db: Database) -> dict[str, int]:
    """How many jobs, runs, threads, campaigns and quota holds the registry has."""
    with db.session() as session:
        counts = {
            name: session.scalar(select(func.count()).select_from(model)) or 0
            for name, model in (
                ("jobs", JobRow),
                ("runs", RunRow),
                ("threads", ThreadRow),
                ("campaigns", CampaignRow),
            )
        }
        counts["holds"] = (
            session.scalar(select(func.count()).where(SpendReservationRow.kind == "admission")) or 0
        )
    return {name: int(count) for name, count in counts.items()}


def _refused_at_post(answer: Any) -> None:
    problem = assert_problem(answer, 422, "bad-input")
    assert "template renders" in problem["detail"], problem
    assert "the limit is 20000" in problem["detail"], problem


def test_a_render_past_the_cap_is_refused_at_post_with_nothing_stored(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database
) -> None:
    """The same brand and template with a short brief is accepted first: the long brief's
    verdict is its own, not the one the short brief got."""
    _huge_template(client, keys)
    creator = keys["A", "creator"]
    short = client.post(
        "/v1/generations", json={**BODY, "brief": "a cup of coffee"}, headers=creator
    )
    assert short.status_code == 202, short.text
    assert wait_job(client, short.json()["id"], keys["A", "viewer"])["state"] == "succeeded"
    before = _stored(db)
    _refused_at_post(client.post("/v1/generations?wait=20", json=BODY, headers=creator))
    assert _stored(db) == before


def test_a_split_label_refuses_at_post_each_request_whose_run_gets_the_version_past_the_cap(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database
) -> None:
    """``banner:exp`` splits 1:3 over a version the long brief renders within the cap and one
    it renders past it. Each request is checked with the run id its job gets: a request is
    accepted only if its run gets version 1, the others are 422 with nothing stored (a fixed
    id for every request would accept all or refuse all)."""
    creator, approver = keys["A", "creator"], keys["A", "approver"]
    huge = " ".join(["{{ brief }}"] * 100) + " {{ palette_clause }}"
    for body in ("{{ brief }}, {{ palette_clause }}", huge):
        added = client.post(
            "/v1/templates/banner/versions", json={"body": body, "message": "m"}, headers=creator
        )
        assert added.status_code == 201, added.text
    weights = {"1": 1.0, "2": 3.0}
    moved = client.put(
        "/v1/templates/banner/labels/exp", json={"weights": weights}, headers=approver
    )
    assert moved.status_code == 200, moved.text
    body = {**BODY, "template": "banner:exp"}
    accepted, refused = [], 0
    for _ in range(10):
        before = _stored(db)
        answer = client.post("/v1/generations", json=body, headers=creator)
        if answer.status_code == 202:
            assert pick_weighted(weights, answer.json()["run_id"]) == 1, answer.json()
            accepted.append(answer.json()["id"])
        else:
            _refused_at_post(answer)
            after = _stored(db)  # (the accepted jobs store their runs meanwhile)
            assert (after["jobs"], after["holds"]) == (before["jobs"], before["holds"])
            refused += 1
    assert refused >= 1  # each request lands on version 2 with probability 3/4
    for job_id in accepted:
        job = wait_job(client, job_id, keys["A", "viewer"])
        # its run went ahead on version 1: it either accepted an image or, for an unlucky random
        # seed, ended without one (budget or rounds spent) - never refused as bad input
        if job["state"] != "succeeded":
            assert job["state"] == "failed", job
            assert job["error"]["type"] != "bad-input", job
        run = client.get(f"/v1/runs/{job['run_id']}", headers=keys["A", "viewer"])
        assert run.status_code == 200 and run.json()["status"] != "refused", run.text


def test_threads_and_campaigns_refuse_a_render_past_the_cap_at_post(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database
) -> None:
    """The default template's ``production`` label moved to an approved version the long brief
    renders past the cap: a thread's first message and a campaign's asset are refused at POST,
    and neither the thread nor the campaign is kept."""
    creator, approver = keys["A", "creator"], keys["A", "approver"]
    huge = " ".join(["{{ brief }}"] * 100) + " {{ palette_clause }}"
    added = client.post(
        "/v1/templates/brand-hero/versions", json={"body": huge, "message": "m"}, headers=creator
    )
    assert added.status_code == 201, added.text
    version = added.json()["version"]
    submitted = client.post(f"/v1/templates/brand-hero/versions/{version}/submit", headers=creator)
    assert submitted.status_code == 200, submitted.text
    approved = client.post(
        f"/v1/templates/brand-hero/versions/{version}/review",
        json={"decision": "approve", "note": "ok"},
        headers=approver,
    )
    assert approved.status_code == 200, approved.text
    moved = client.put(
        "/v1/templates/brand-hero/labels/production",
        json={"weights": {str(version): 1.0}},
        headers=approver,
    )
    assert moved.status_code == 200, moved.text
    before = _stored(db)
    generation = {k: v for k, v in BODY.items() if k != "template"}
    _refused_at_post(client.post("/v1/generations", json=generation, headers=creator))
    thread = {"brand": "acme coffee", "title": "t", "message": LONG_BRIEF, "size": "128x128"}
    _refused_at_post(client.post("/v1/threads", json=thread, headers=creator))
    campaign = {
        "name": "autumn",
        "brand": "acme coffee",
        "budget_usd": 0.1,
        "assets": [{"brief": "a cup", "formats": ["128x128"]}, {"brief": LONG_BRIEF}],
    }
    _refused_at_post(client.post("/v1/campaigns", json=campaign, headers=creator))
    assert _stored(db) == before


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
