"""The Celery path of a run whose storage fails mid-run: a ``brandloop worker`` bound by file
modes (root's override dropped with ``setpriv``) finds the shared artifact store read-only
after paying for its first images. The job ends with the same 503 ``storage-failed`` error as
the in-process pool gives (``tests/api/http/test_storage_failure.py``: the Celery worker runs
jobs through the same ``WorkerPool``), its event stream ends with it, and the API's resume,
run by the worker once the store is writable, finishes the run paying for no call twice.

PostgreSQL only, as every scale-out test: replicas and workers share one PostgreSQL database.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.http.test_server import read_sse
from tests.api.http.test_storage_failure import (
    assert_storage_failed,
    bound_by_file_modes,
    read_only_artifact_store,
)
from tests.scale.stack import BRANDLOOP, ROOT, Stack, setup_tenant, started_stack, submit

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with started_stack(tmp_path, redis_db=14) as running:
        yield running


def start_bound_worker(stack: Stack) -> None:
    """One ``brandloop worker`` whose writes file modes bind (``Stack.start_worker`` else)."""
    name = f"worker{len(stack.workers)}"
    data_dir = stack.root / name
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [BRANDLOOP, "worker", "--concurrency", "1", "--loglevel", "WARNING"]
    env = {**stack.env, "BRANDLOOP_DATA_DIR": str(data_dir)}
    with (stack.root / f"{name}.log").open("wb") as log:  # the child keeps its own handle
        worker = subprocess.Popen(
            bound_by_file_modes(argv), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    stack.workers.append(worker)


def wait_finished(stack: Stack, client: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish:\n{stack.logs()}")


def test_a_celery_job_whose_artifact_store_is_read_only_names_it_and_resumes(
    stack: Stack,
) -> None:
    artifacts = Path(stack.env["BRANDLOOP_ARTIFACTS_DIR"])
    folders = read_only_artifact_store(artifacts)
    base = stack.start_api()
    start_bound_worker(stack)
    stack.wait_ready()
    setup_tenant(stack)
    job_id = submit(stack, base, 0)
    with httpx.Client(base_url=base, headers=stack.headers(), timeout=60) as client:
        name, ended = read_sse(client, f"/v1/jobs/{job_id}/events", stack.headers())[-1]
        failed = wait_finished(stack, client, job_id)
        run_id = failed["run_id"]
        assert failed["state"] == "failed", (failed, stack.logs())
        assert_storage_failed(failed["error"], folders=artifacts, run_id=run_id)
        assert name == "end" and ended["error"] == failed["error"], ended
        assert client.get(f"/v1/runs/{run_id}").json()["status"] == "running"
        paid_before = stack.paid_counts()
        assert paid_before, "the run paid for nothing before its storage failed"

        for folder in folders:
            folder.chmod(0o755)
        resumed = client.post(f"/v1/runs/{run_id}/resume")
        assert resumed.status_code == 202, resumed.text
        done = wait_finished(stack, client, resumed.json()["id"])
        assert done["state"] == "succeeded", (done, stack.logs())
        trace = client.get(f"/v1/runs/{run_id}/trace").json()
        for image in trace["run"]["images"]:
            served = client.get(f"/v1/artifacts/{image['sha256']}")
            assert hashlib.sha256(served.content).hexdigest() == image["sha256"]
    paid = stack.paid_counts()
    assert max(paid.values()) == 1, f"a call was paid twice: {paid}"
    assert sorted(a["idempotency_key"] for a in trace["attempts"]) == sorted(paid)
    assert trace["run"]["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in trace["attempts"]))
