"""Storage failing under a review verdict and under a run's checkpoints, over real HTTP
(``brandloop serve`` in a subprocess bound by file modes, as tests/api/http/test_storage_failure.py
runs it): the answer is a 503 ``storage-failed`` in plain words naming what to do, never a bare
500 ``internal``, and the run is kept - waiting for review again, or resumable - and finishes
once the storage is fixed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.http.conftest import brand_kit
from tests.api.http.test_server import HTTP_TIMEOUT, env_for, free_port, make_key
from tests.api.http.test_storage_failure import serving, wait_finished

pytestmark = [pytest.mark.server, pytest.mark.slow]

GEN = {"brief": "a steaming cup of coffee", "brand": "Acme Coffee", "size": "256x256"}


def _read_only_tree(root: Path) -> list[Path]:
    """``root`` and every folder under it made read-only; the folders, to make writable again."""
    folders = [root, *(p for p in root.rglob("*") if p.is_dir())]
    for folder in folders:
        folder.chmod(0o555)
    return folders


def _storage_failed(answer: httpx.Response, *, run_id: str, then: str) -> str:
    """The problem+json of a storage failure: typed, in plain words, naming the run and what
    finishes it; never a server path or a database URL."""
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
    problem: dict[str, Any] = answer.json()
    assert problem["type"].endswith(":storage-failed") and problem["status"] == 503, problem
    detail: str = problem["detail"]
    assert detail.startswith("storage failed: "), detail
    assert f"run {run_id} {then}" in detail, detail
    assert "/tmp" not in detail and "://" not in detail, detail
    return detail


def test_an_approval_whose_artifact_store_is_read_only_is_a_503_and_the_run_waits_again(
    tmp_path: Path, database_url: str | None
) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    data_dir = tmp_path / "data"
    # no off-palette accent: the run must reach review, whatever seed it draws
    env = env_for(
        data_dir,
        database_url,
        BRANDLOOP_AGENT_POLICY=str(policy),
        BRANDLOOP_PROCEDURAL_ACCENT_CHANCE="0",
    )
    admin, creator = make_key(env, "acme", "admin"), make_key(env, "acme", "creator")
    approver = make_key(env, "acme", "approver")
    port = free_port()
    with (
        serving(env, port, tmp_path / "server.log"),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HTTP_TIMEOUT) as client,
    ):
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).status_code == 201
        job = client.post("/v1/generations?wait=120", json=GEN, headers=creator).json()
        assert job["state"] == "awaiting_review", job
        run_id = job["run_id"]

        folders = _read_only_tree(data_dir / "artifacts")  # the delivered copy cannot be stored
        try:
            verdict = client.post(
                f"/v1/review/runs/{run_id}", json={"decision": "approve"}, headers=approver
            )
        finally:
            for folder in folders:
                folder.chmod(0o755)
        detail = _storage_failed(verdict, run_id=run_id, then="waits for review again")
        assert "<artifacts dir>" in detail and "may not be written by the service" in detail
        assert f"POST /v1/review/runs/{run_id}" in detail, detail
        run = client.get(f"/v1/runs/{run_id}", headers=creator).json()
        assert run["status"] == "awaiting_review", run

        again = client.post(
            f"/v1/review/runs/{run_id}", json={"decision": "approve"}, headers=approver
        )
        assert again.status_code == 200 and again.json()["status"] == "succeeded", again.text
        done = client.get(f"/v1/jobs/{job['id']}", headers=creator).json()
        assert done["state"] == "succeeded", done


@pytest.mark.databases("sqlite")
def test_a_job_whose_checkpoint_file_is_read_only_is_storage_failed_and_resumes(
    tmp_path: Path, database_url: str | None
) -> None:
    """SQLite only: the checkpoint file is SQLite's (on PostgreSQL checkpoints are rows of the
    registry's database, whose failures test_storage_failure.py covers)."""
    data_dir = tmp_path / "data"
    env = env_for(data_dir, database_url)
    admin, creator = make_key(env, "acme", "admin"), make_key(env, "acme", "creator")
    port = free_port()
    with (
        serving(env, port, tmp_path / "server.log"),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HTTP_TIMEOUT) as client,
    ):
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).status_code == 201
        first = client.post("/v1/generations?wait=120", json=GEN, headers=creator).json()
        assert first["state"] == "succeeded", first  # the checkpoint file is made
        checkpoints = data_dir / "checkpoints.sqlite"
        assert checkpoints.is_file()
        os.chmod(checkpoints, 0o444)
        try:
            submitted = client.post(
                "/v1/generations", json={**GEN, "brief": "a cold brew"}, headers=creator
            )
            assert submitted.status_code == 202, submitted.text
            failed = wait_finished(client, submitted.json()["id"], creator)
        finally:  # the file and what SQLite made beside it meanwhile (-shm, -wal: as read-only)
            for made in data_dir.glob("checkpoints.sqlite*"):
                os.chmod(made, 0o644)
        run_id = failed["run_id"]
        assert failed["state"] == "failed", failed
        error = failed["error"]
        assert error["type"] == "storage-failed" and error["status"] == 503, error
        detail = error["detail"]
        assert "the checkpoint file is read-only (the service may not write it)" in detail
        assert f"run {run_id} is kept" in detail and f"POST /v1/runs/{run_id}/resume" in detail
        assert "/tmp" not in detail, detail

        resumed = client.post(f"/v1/runs/{run_id}/resume", headers=creator)
        assert resumed.status_code == 202, resumed.text
        done = wait_finished(client, resumed.json()["id"], creator)
        assert done["state"] == "succeeded", done
