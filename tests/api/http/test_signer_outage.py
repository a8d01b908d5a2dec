"""A job whose C2PA signer fails: the job's error names the run and how to resume it, and the
resume (with the signer back) finishes the run without paying for its images again."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandloop.registry.db import Database
from brandloop.settings import Settings
from brandloop.tools.credentials.devca import make_dev_credentials
from tests.agent.helpers import CountingProvider
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, assert_problem, brand_kit, wait_job
from tests.fakes.provider_server import serve
from tests.fakes.remote_signer import FakeRemoteSigner


def test_a_job_stopped_by_its_signer_names_the_run_and_resumes(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    acme = make_dev_credentials(org="Acme Corp", ca_name="Acme Root", signer_name="Acme Signer")
    chain = tmp_path / "chain.pem"
    chain.write_text(acme.chain_pem)
    signer = FakeRemoteSigner(key_pem=acme.key_pem, fail_with=401)
    provider = CountingProvider()
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
        with client_with(configured, db, provider, workers=1) as client:
            assert client.post(
                "/v1/brands", json=brand_kit(), headers=keys["A", "admin"]
            ).is_success
            creator = keys["A", "creator"]
            body = {"brief": "a cup", "brand": "Acme Coffee", "size": "256x256", "seed": 90}
            submitted = client.post("/v1/generations", json=body, headers=creator)
            assert submitted.status_code == 202, submitted.text
            failed = wait_job(client, submitted.json()["id"], creator)
            run_id = failed["run_id"]
            assert failed["state"] == "failed", failed
            assert failed["error"]["type"] == "signing-failed", failed
            assert failed["error"]["status"] == 503
            detail = failed["error"]["detail"]
            assert "HTTP 401" in detail and f"POST /v1/runs/{run_id}/resume" in detail, detail
            paid = len(provider.calls)
            signer.fail_with = None
            resumed = client.post(f"/v1/runs/{run_id}/resume", headers=creator)
            assert resumed.status_code == 202, resumed.text
            done = wait_job(client, resumed.json()["id"], creator)
            assert done["state"] == "succeeded", done
            assert len(provider.calls) == paid


def test_an_approval_stopped_by_its_signer_is_a_503_and_can_be_given_again(
    settings: Settings, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signer fails while an approval finishes a run waiting for review: a 503
    ``signing-failed`` naming the run (not a 500); the run waits for review again, its job
    too, and the same verdict given once the signer is back delivers without paying again."""
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    acme = make_dev_credentials(org="Acme Corp", ca_name="Acme Root", signer_name="Acme Signer")
    chain = tmp_path / "chain.pem"
    chain.write_text(acme.chain_pem)
    signer = FakeRemoteSigner(key_pem=acme.key_pem, fail_with=503)
    provider = CountingProvider()
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
        with client_with(configured, db, provider, workers=1) as client:
            assert client.post(
                "/v1/brands", json=brand_kit(), headers=keys["A", "admin"]
            ).is_success
            creator = keys["A", "creator"]
            body = {"brief": "a cup", "brand": "Acme Coffee", "size": "256x256", "seed": 92}
            job = client.post("/v1/generations?wait=60", json=body, headers=creator).json()
            assert job["state"] == "awaiting_review", job
            run_id, paid = job["run_id"], len(provider.calls)
            approver = keys.of("A", "lee", "approver")
            path = f"/v1/review/runs/{run_id}"
            answer = client.post(path, json={"decision": "approve"}, headers=approver)
            problem = assert_problem(answer, 503, "signing-failed")
            detail = problem["detail"]
            assert "HTTP 503" in detail and f"run {run_id}" in detail, detail
            assert f"POST {path}" in detail, detail
            viewer = keys["A", "viewer"]
            run = client.get(f"/v1/runs/{run_id}", headers=viewer).json()
            assert run["status"] == "awaiting_review", run
            waiting = client.get(f"/v1/jobs/{job['id']}", headers=creator).json()
            assert waiting["state"] == "awaiting_review", waiting
            signer.fail_with = None
            again = client.post(path, json={"decision": "approve"}, headers=approver)
            assert again.status_code == 200 and again.json()["status"] == "succeeded", again.text
            assert len(provider.calls) == paid
            done = client.get(f"/v1/jobs/{job['id']}", headers=creator).json()
            assert done["state"] == "succeeded", done
