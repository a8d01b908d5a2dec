"""Verdicts on runs and review assignment over HTTP, on both databases: a verdict finishes a
run waiting for review or is recorded on a delivered one, never "approves" a run already
rejected; a run is assigned only to a principal of the tenant who may review."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.api.auth import create_key, revoke_key
from brandloop.api.cli import main
from brandloop.registry.db import Database
from brandloop.settings import get_settings
from tests.api.http.conftest import Keys, assert_problem, both_databases, brand_kit

settings = pytest.fixture(name="settings")(both_databases)

GEN = {"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256"}


@pytest.fixture
def reviewing(
    make_client: Callable[..., TestClient], keys: Keys, tmp_path: Path, monkeypatch: Any
) -> TestClient:
    """A client whose agent policy sends every run to review, with tenant A's brand."""
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    client = make_client()
    made = client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"])
    assert made.status_code == 201, made.text
    return client


def _waiting(client: TestClient, keys: Keys, seed: int = 1) -> dict[str, Any]:
    job = client.post(
        "/v1/generations?wait=60", json={**GEN, "seed": seed}, headers=keys["A", "creator"]
    ).json()
    assert job["state"] == "awaiting_review", job
    return dict(job)


def test_a_rejected_run_cannot_then_be_approved(reviewing: TestClient, keys: Keys) -> None:
    client = reviewing
    job = _waiting(client, keys)
    path = f"/v1/review/runs/{job['run_id']}"
    lee, ana = keys.of("A", "lee", "approver"), keys.of("A", "ana", "approver")
    rejected = client.post(path, json={"decision": "reject", "note": "too orange"}, headers=lee)
    assert rejected.status_code == 200 and rejected.json()["status"] == "failed", rejected.text
    for decision in ("approve", "reject"):
        late = client.post(path, json={"decision": decision, "note": "ship it"}, headers=ana)
        detail = assert_problem(late, 409, "conflict")["detail"]
        assert "already rejected by lee" in detail and "failed" in detail, detail
    run = client.get(f"/v1/runs/{job['run_id']}", headers=keys["A", "viewer"]).json()
    assert run["status"] == "failed" and not run.get("images")
    # a delivered run still takes a verdict, recorded in the audit log (docs/http-api.md)
    done = client.post("/v1/generations?wait=60", json=GEN, headers=keys["A", "creator"]).json()
    assert client.post(f"/v1/review/runs/{done['run_id']}", json={"decision": "approve"},
                       headers=lee).status_code == 200  # fmt: skip


def test_two_verdicts_at_once_finish_the_run_once(reviewing: TestClient, keys: Keys) -> None:
    client = reviewing
    job = _waiting(client, keys, seed=2)
    path = f"/v1/review/runs/{job['run_id']}"
    verdicts = [
        ({"decision": "approve"}, keys.of("A", "raj", "approver")),
        ({"decision": "reject", "note": "no"}, keys.of("A", "lee", "approver")),
    ]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda v: client.post(path, json=v[0], headers=v[1]), verdicts))
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    won = next(a for a in answers if a.status_code == 200).json()
    run = client.get(f"/v1/runs/{job['run_id']}", headers=keys["A", "viewer"]).json()
    assert run["status"] == won["status"]


def test_a_run_is_assigned_only_to_a_reviewer_of_the_tenant(
    reviewing: TestClient, keys: Keys, db: Database
) -> None:
    client = reviewing
    job = _waiting(client, keys, seed=3)
    path = f"/v1/review/runs/{job['run_id']}/assign"
    lee = keys.of("A", "lee", "approver")
    keys.of("A", "boss", "admin")
    keys.of("A", "cora", "creator")
    keys.of("B", "zed", "approver")
    with db.session() as session:  # old was a reviewer until their key was revoked
        row, _ = create_key(session, tenant="A", role="approver", principal="old")
        revoke_key(session, row=row, actor="test")
    for malformed in ("\u0430na", "", "-lee", "lee ", "a b", "x" * 121, "lee\n"):
        answer = client.post(path, json={"assignee": malformed}, headers=lee)
        assert_problem(answer, 422, "validation")
    for stranger in ("nobody-here", "cora", "zed", "old", "Lee"):
        answer = client.post(path, json={"assignee": stranger}, headers=lee)
        detail = assert_problem(answer, 422, "bad-input")["detail"]
        assert f"no reviewer '{stranger}'" in detail, detail
    for reviewer in ("lee", "boss"):
        assert client.post(path, json={"assignee": reviewer}, headers=lee).status_code == 204


def test_a_job_settles_when_the_cli_gives_the_verdict(
    reviewing: TestClient,
    keys: Keys,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run the API made, waiting for review, answered with `brandloop review approve|reject`
    (the CLI on the same registry): its job ends as the run did, as when the API's own route
    gives the verdict."""
    client = reviewing
    monkeypatch.setenv("BRANDLOOP_TENANT", "A")  # the CLI's tenant: the API's tenant A
    get_settings.cache_clear()
    creator, viewer = keys["A", "creator"], keys["A", "viewer"]
    for seed, decision, state, status in (
        (4, "approve", "succeeded", "succeeded"),
        (5, "reject", "failed", "failed"),
    ):
        job = _waiting(client, keys, seed=seed)
        with pytest.raises(SystemExit) as exc:
            main(["review", decision, job["run_id"], "--note", "from the CLI", "--json"])
        assert exc.value.code == 0, capsys.readouterr().err
        assert json.loads(capsys.readouterr().out)["status"] == status
        run = client.get(f"/v1/runs/{job['run_id']}", headers=viewer).json()
        assert run["status"] == status, run
        settled = client.get(f"/v1/jobs/{job['id']}", headers=creator).json()
        assert settled["state"] == state, settled
        assert settled["result"]["status"] == status and settled["finished_at"], settled
        waiting = client.get("/v1/review", headers=keys["A", "approver"]).json()
        assert job["run_id"] not in [r["run_id"] for r in waiting["runs"]]


def test_a_rejection_says_why_and_its_job_fails_saying_so(
    reviewing: TestClient, keys: Keys, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    """An outside tester's report (session 28): a rejection with no note, a blank one or one
    of invisible characters was taken over the API and the CLI (the studio refused it), and the
    job a rejection failed carried no ``error``."""
    client = reviewing
    job = _waiting(client, keys, seed=6)
    path = f"/v1/review/runs/{job['run_id']}"
    lee = keys.of("A", "lee", "approver")
    for body in (
        {"decision": "reject"},
        {"decision": "reject", "note": "   "},
        {"decision": "reject", "note": "\u200b\u00ad"},
    ):
        problem = assert_problem(client.post(path, json=body, headers=lee), 422, "validation")
        assert "a rejection needs a note saying why" in problem["detail"], problem
    monkeypatch.setenv("BRANDLOOP_TENANT", "A")
    get_settings.cache_clear()
    with pytest.raises(SystemExit) as exc:
        main(["review", "reject", job["run_id"], "--note", " \u200b "])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "a rejection needs a note saying why: --note" in err and err.count("\n") == 1, err
    run = client.get(f"/v1/runs/{job['run_id']}", headers=keys["A", "viewer"]).json()
    assert run["status"] == "awaiting_review", run  # nothing was decided

    rejected = client.post(path, json={"decision": "reject", "note": "too orange"}, headers=lee)
    assert rejected.status_code == 200, rejected.text
    failed = client.get(f"/v1/jobs/{job['id']}", headers=keys["A", "creator"]).json()
    assert failed["state"] == "failed", failed
    assert failed["error"] == {
        "type": "failed",
        "status": 422,
        "detail": failed["result"]["reason"],
    }, failed
    assert "rejected in review by lee: too orange" in failed["error"]["detail"], failed


def test_a_run_is_not_assigned_to_the_principal_who_asked_for_it(
    reviewing: TestClient, keys: Keys
) -> None:
    # four eyes: cal may never approve the run cal asked for, so it is not theirs to review
    # (an outside tester's report: the assignment was taken, the approval then refused)
    client = reviewing
    cal_creator, cal_approver = keys.of("A", "cal", "creator"), keys.of("A", "cal", "approver")
    job = client.post(
        "/v1/generations?wait=60", json={**GEN, "seed": 5}, headers=cal_creator
    ).json()
    assert job["state"] == "awaiting_review", job
    path = f"/v1/review/runs/{job['run_id']}/assign"
    lee = keys.of("A", "lee", "approver")
    detail = assert_problem(
        client.post(path, json={"assignee": "cal"}, headers=lee), 409, "conflict"
    )["detail"]
    assert "four eyes: cal asked for run" in detail, detail
    assert client.post(path, json={"assignee": "cal"}, headers=cal_approver).status_code == 409
    assert client.post(path, json={"assignee": "lee"}, headers=lee).status_code == 204
