"""A run waiting for review whose held image an admin deleted (``DELETE /v1/artifacts/{sha}``,
allowed while it waits): an approval is a 409 naming the deleted image and saying to reject,
never a 500; a rejection finishes the run as usual, and its job settles. A delete racing an
approval of the same run ends one way or the other: delivered with the image (the delete a 409
while the approval holds the run), or the approval a 409 and the run still waiting, never a 500
and never stuck. The CLI answers the same, in one line. And a rejection after an approval that
did not finish the run (its signer failed) rejects it: the earlier approval is not applied
instead. On both databases."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.api.auth import create_key
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from brandloop.tools.credentials.devca import make_dev_credentials
from tests.agent.helpers import CountingProvider
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, assert_problem, both_databases, brand_kit
from tests.api.studio.conftest import csrf_of
from tests.api.test_cli import run_cli
from tests.fakes.provider_server import serve
from tests.fakes.remote_signer import FakeRemoteSigner

settings = pytest.fixture(name="settings")(both_databases)

GEN = {"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256"}


@pytest.fixture
def reviewing(
    make_client: Callable[..., TestClient], keys: Keys, tmp_path: Path, monkeypatch: Any
) -> TestClient:
    """Acme Coffee's deliveries wait for review (``brand_review``), as the tester set it up."""
    policy = tmp_path / "agent.yaml"
    policy.write_text("brand_review:\n  acme-coffee: {mode: always}\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    client = make_client()
    made = client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"])
    assert made.status_code == 201, made.text
    return client


def waiting_run(client: TestClient, keys: Keys, *, seed: int, count: int = 1) -> dict[str, Any]:
    job = client.post(
        "/v1/generations?wait=60",
        json={**GEN, "seed": seed, "count": count},
        headers=keys.of("A", "ana", "creator"),
    ).json()
    assert job["state"] == "awaiting_review", job
    return dict(job)


def held_images(client: TestClient, keys: Keys, run_id: str) -> list[str]:
    trace = client.get(f"/v1/runs/{run_id}/trace", headers=keys["A", "viewer"]).json()
    return [a["artifact_sha256"] for a in trace["attempts"] if a["outcome"] == "accepted"]


def test_a_held_image_deleted_stays_deleted_for_its_run_when_another_run_makes_it_again(
    reviewing: TestClient, keys: Keys, db: Database
) -> None:
    """An outside tester's report (session 28): once another run had made the same bytes
    again, the deleted image was the tenant's again and the waiting run was approved,
    delivering it. The delete stands for the run that held it: its approval stays a 409 and its
    review page shows the image deleted; the run that made the bytes afterwards is approved."""
    client = reviewing
    first = waiting_run(client, keys, seed=13)
    [sha] = held_images(client, keys, first["run_id"])
    adm, lee = keys.of("A", "adm", "admin"), keys.of("A", "lee", "approver")
    assert client.delete(f"/v1/artifacts/{sha}", headers=adm).status_code == 204
    again = waiting_run(client, keys, seed=13)  # the same request: the same bytes
    assert held_images(client, keys, again["run_id"]) == [sha]
    assert client.get(f"/v1/artifacts/{sha}", headers=keys["A", "viewer"]).status_code == 200

    path = f"/v1/review/runs/{first['run_id']}"
    answer = client.post(path, json={"decision": "approve", "note": "ok"}, headers=lee)
    detail = assert_problem(answer, 409, "conflict")["detail"]
    assert sha in detail and "deleted while it waited" in detail, detail
    browser = TestClient(client.app, raise_server_exceptions=False)
    browser.portal = client.portal  # requests on the app's own loop, as the studio's tests
    with db.session() as session:
        _, key = create_key(session, tenant="A", role="approver", principal="lee")
    form = browser.get("/signin")
    signed = browser.post(
        "/signin", data={"key": key, "csrf": csrf_of(form.text)}, follow_redirects=False
    )
    assert signed.status_code == 303, signed.text
    page = browser.get(f"/review/{first['run_id']}")
    assert page.status_code == 200 and "Deleted before the verdict" in page.text, page.text
    assert f"/thumbs/1024/{sha}" not in page.text and f"/images/{sha}" not in page.text

    later = f"/v1/review/runs/{again['run_id']}"
    approved = client.post(later, json={"decision": "approve", "note": "ok"}, headers=lee)
    assert approved.status_code == 200 and approved.json()["status"] == "succeeded", approved.text
    rejected = client.post(path, json={"decision": "reject", "note": "deleted"}, headers=lee)
    assert rejected.status_code == 200, rejected.text


def test_an_approval_after_a_held_image_was_deleted_is_a_409_and_a_rejection_finishes_the_run(
    reviewing: TestClient, keys: Keys, settings: Settings
) -> None:
    client = reviewing
    job = waiting_run(client, keys, seed=11)
    run_id = job["run_id"]
    [sha] = held_images(client, keys, run_id)
    adm, lee = keys.of("A", "adm", "admin"), keys.of("A", "lee", "approver")
    assert client.delete(f"/v1/artifacts/{sha}", headers=adm).status_code == 204
    path = f"/v1/review/runs/{run_id}"
    for _ in range(2):  # every approval is the same answer, nothing changes
        answer = client.post(path, json={"decision": "approve", "note": "ok"}, headers=lee)
        detail = assert_problem(answer, 409, "conflict")["detail"]
        assert sha in detail and "deleted" in detail and "reject" in detail, detail
        assert str(settings.data_dir) not in answer.text and "FileNotFoundError" not in detail
        run = client.get(f"/v1/runs/{run_id}", headers=keys["A", "viewer"]).json()
        assert run["status"] == "awaiting_review", run
    rejected = client.post(path, json={"decision": "reject", "note": "gone"}, headers=lee)
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "failed" and rejected.json()["by"] == "lee"
    run = client.get(f"/v1/runs/{run_id}", headers=keys["A", "viewer"]).json()
    assert run["status"] == "failed" and not run["images"], run
    settled = client.get(f"/v1/jobs/{job['id']}", headers=keys["A", "viewer"]).json()
    assert settled["state"] == "failed" and settled["finished_at"], settled
    trace = client.get(f"/v1/runs/{run_id}/trace", headers=keys["A", "viewer"]).json()
    assert [a["artifact_sha256"] for a in trace["attempts"] if a["artifact_sha256"] == sha]
    assert any(e["kind"] == "decision" and "rejected in review by lee" in str(e) for e in
               trace["events"]), trace["events"]  # fmt: skip
    late = client.post(path, json={"decision": "approve", "note": "ok"}, headers=lee)
    assert "already rejected by lee" in assert_problem(late, 409, "conflict")["detail"]


def test_one_deleted_image_of_two_held_stops_the_approval_naming_it_alone(
    reviewing: TestClient, keys: Keys
) -> None:
    """An approval is of the images the reviewer saw: with one of them gone, nothing is
    delivered in part behind their back; the 409 names the deleted one only."""
    client = reviewing
    job = waiting_run(client, keys, seed=12, count=2)
    run_id = job["run_id"]
    gone, kept = held_images(client, keys, run_id)
    assert client.delete(f"/v1/artifacts/{gone}", headers=keys["A", "admin"]).status_code == 204
    lee = keys.of("A", "lee", "approver")
    answer = client.post(f"/v1/review/runs/{run_id}", json={"decision": "approve"}, headers=lee)
    detail = assert_problem(answer, 409, "conflict")["detail"]
    assert gone in detail and kept not in detail, detail
    assert client.get(f"/v1/artifacts/{kept}", headers=keys["A", "viewer"]).status_code == 200
    queue = client.get("/v1/review", headers=lee).json()
    assert run_id in [r["run_id"] for r in queue["runs"]]


def test_a_delete_racing_an_approval_ends_delivered_or_still_waiting(
    reviewing: TestClient, keys: Keys
) -> None:
    client = reviewing
    adm, lee = keys.of("A", "adm", "admin"), keys.of("A", "lee", "approver")
    viewer = keys["A", "viewer"]
    seen = set()
    for seed in range(20, 26):
        job = waiting_run(client, keys, seed=seed)
        run_id = job["run_id"]
        [sha] = held_images(client, keys, run_id)
        path = f"/v1/review/runs/{run_id}"
        with ThreadPoolExecutor(2) as pool:
            approving = pool.submit(client.post, path, json={"decision": "approve"}, headers=lee)
            deleting = pool.submit(client.delete, f"/v1/artifacts/{sha}", headers=adm)
            approved, deleted = approving.result(), deleting.result()
        assert approved.status_code in (200, 409), approved.text
        assert deleted.status_code in (204, 409), deleted.text
        run = client.get(f"/v1/runs/{run_id}", headers=viewer).json()
        if approved.status_code == 200:  # delivered, with its image
            assert run["status"] == "succeeded", run
            [image] = run["images"]
            got = client.get(f"/v1/artifacts/{image['sha256']}", headers=viewer)
            assert got.status_code == 200 and got.content, got.text
            if deleted.status_code == 409:
                detail = assert_problem(deleted, 409, "conflict")["detail"]
                assert run_id in detail, detail
            seen.add("delivered")
        else:  # the delete won: the run still waits, and a rejection finishes it
            assert deleted.status_code == 204, deleted.text
            assert sha in assert_problem(approved, 409, "conflict")["detail"]
            assert run["status"] == "awaiting_review", run
            rejected = client.post(path, json={"decision": "reject", "note": "gone"}, headers=lee)
            assert rejected.status_code == 200 and rejected.json()["status"] == "failed"
            seen.add("refused")
        settled = client.get(f"/v1/jobs/{job['id']}", headers=viewer).json()
        assert settled["state"] in ("succeeded", "failed"), settled
    assert seen, seen


def test_the_cli_refuses_the_approval_in_one_line_and_rejects(
    reviewing: TestClient,
    keys: Keys,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`brandloop review approve|reject` on the registry the API serves (tenant A)."""
    client = reviewing
    monkeypatch.setenv("BRANDLOOP_TENANT", "A")
    get_settings.cache_clear()
    job = waiting_run(client, keys, seed=13)
    run_id = job["run_id"]
    [sha] = held_images(client, keys, run_id)
    assert client.delete(f"/v1/artifacts/{sha}", headers=keys["A", "admin"]).status_code == 204
    code, out, err = run_cli(capsys, "review", "approve", run_id, "--note", "ok")
    assert code == 2, err
    assert err.count("\n") == 1 and sha in err and "reject" in err, err
    assert str(settings.data_dir) not in err and "internal error" not in err, err
    run = client.get(f"/v1/runs/{run_id}", headers=keys["A", "viewer"]).json()
    assert run["status"] == "awaiting_review", run
    code, out, err = run_cli(capsys, "review", "reject", run_id, "--note", "gone", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "failed"
    settled = client.get(f"/v1/jobs/{job['id']}", headers=keys["A", "viewer"]).json()
    assert settled["state"] == "failed", settled
    get_settings.cache_clear()


def test_a_rejection_after_an_approval_the_signer_stopped_rejects_the_run(
    settings: Settings, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The approval's signer fails (503 ``signing-failed``: the run waits for review again);
    a rejection then finishes the run rejected, nothing delivered, and its job settles so. It
    once finished the run with the approval recorded in its checkpoint: a rejected run
    delivered."""
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    acme = make_dev_credentials(org="Acme Corp", ca_name="Acme Root", signer_name="Acme Signer")
    chain = tmp_path / "chain.pem"
    chain.write_text(acme.chain_pem)
    signer = FakeRemoteSigner(key_pem=acme.key_pem, fail_with=503)
    keys = Keys(db)
    with serve(signer, prefix="") as base:
        configured = Settings.model_validate(
            {
                **settings.model_dump(),
                "c2pa_cert_chain": chain,
                "c2pa_remote_url": f"{base}/sign",
                "c2pa_remote_token": signer.token,
            }
        )
        with client_with(configured, db, CountingProvider(), workers=1) as client:
            admin = keys["A", "admin"]
            assert client.post("/v1/brands", json=brand_kit(), headers=admin).is_success
            job = waiting_run(client, keys, seed=14)
            run_id = job["run_id"]
            path = f"/v1/review/runs/{run_id}"
            lee, raj = keys.of("A", "lee", "approver"), keys.of("A", "raj", "approver")
            failed = client.post(path, json={"decision": "approve"}, headers=raj)
            assert_problem(failed, 503, "signing-failed")
            signer.fail_with = None  # the signer is back: nothing stops a delivery now
            rejected = client.post(path, json={"decision": "reject", "note": "no"}, headers=lee)
            assert rejected.status_code == 200, rejected.text
            assert rejected.json()["status"] == "failed", rejected.text
            run = client.get(f"/v1/runs/{run_id}", headers=keys["A", "viewer"]).json()
            assert run["status"] == "failed" and not run["images"], run
            assert "rejected in review by lee" in run["reason"], run
            settled = client.get(f"/v1/jobs/{job['id']}", headers=admin).json()
            assert settled["state"] == "failed", settled
