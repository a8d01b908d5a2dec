"""A verdict or an assignment on a run whose job is still queued: a 409 that says the run has
not started (and its resume: the run's URLs' 404 naming the job to follow) (docs/http-api.md: any run not waiting for review is a 409), never a 404 for an id
the job handed out - on both databases."""

from __future__ import annotations

from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, assert_problem, brand_kit, wait_job
from tests.api.http.test_cancel_and_resume import BODY, ScriptedProvider, _wait
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]


def test_a_verdict_on_a_queued_run_is_a_conflict_naming_its_job(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    keys = Keys(db_on_both)
    provider = ScriptedProvider("hang")
    with client_with(settings_on_both, db_on_both, provider, workers=1) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator, approver = keys["A", "creator"], keys.of("A", "lee", "approver")
        first = client.post("/v1/generations", json=BODY, headers=creator).json()
        _wait(provider.hanging.is_set, "the first job's call")  # the only worker is busy
        queued = client.post(
            "/v1/generations", json={**BODY, "brief": "a latte"}, headers=creator
        ).json()
        assert queued["state"] == "queued"
        path = f"/v1/review/runs/{queued['run_id']}"
        for body in ({"decision": "approve"}, {"decision": "reject", "note": "no"}):
            detail = assert_problem(client.post(path, json=body, headers=approver), 409, "conflict")
            assert "has not started yet" in detail["detail"] and queued["id"] in detail["detail"]
        assigned = client.post(f"{path}/assign", json={"assignee": "lee"}, headers=approver)
        assert "has not started yet" in assert_problem(assigned, 409, "conflict")["detail"]
        # resuming it: the run's URLs' 404 that names the job to follow, not a bare "no run"
        resumed = client.post(f"/v1/runs/{queued['run_id']}/resume", headers=creator)
        detail = assert_problem(resumed, 404, "not-found")["detail"]
        assert "has not started yet" in detail and queued["id"] in detail
        # another tenant's approver: the run is as absent as a missing one
        other = client.post(path, json={"decision": "approve"}, headers=keys["B", "approver"])
        assert_problem(other, 404, "not-found")
        provider.release.set()
        for job in (first, queued):
            assert wait_job(client, job["id"], creator)["state"] == "succeeded"
