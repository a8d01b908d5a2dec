"""A job whose run's storage fails mid-run, over real HTTP: ``brandloop serve`` in a subprocess
whose file modes bind it (tests run as root, which writes anywhere unless the capability that
lets it is dropped: ``setpriv``, as tests/agent/test_run_lifecycle.py runs the CLI), with every
folder of the artifact store read-only, so the run pays for its first images and then cannot
store them (the second call of the first round is still in flight then: it is cancelled).

The job fails with a 503 ``storage-failed`` error naming the folder in plain words, the kept
run and ``POST /v1/runs/{id}/resume`` (not a bare 500 ``internal``); its event stream ends with
that error; the run stays ``running``. With the folders writable again, two resumes at once
queue one job, which finishes the run: its images are served with the bytes their sha256
names and their receipts inside, and no call is paid twice (the ledger fake provider,
tests/agent/fake_providers.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from brandloop.artifacts import RECEIPT_KEY, read_png_text
from tests.api.http.conftest import brand_kit
from tests.api.http.test_server import (
    BRANDLOOP,
    HTTP_TIMEOUT,
    ROOT,
    env_for,
    free_port,
    make_key,
    read_sse,
)

pytestmark = [pytest.mark.server, pytest.mark.slow]

#: the capabilities that let root write whatever the file modes say
_ROOT_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def bound_by_file_modes(argv: list[str]) -> list[str]:
    """``argv`` run so that file modes bind it (root ignores them unless the capability that
    lets it is dropped)."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file modes do not bind")
    return [*_ROOT_OVERRIDE, *argv]


def read_only_artifact_store(artifacts: Path) -> list[Path]:
    """Every first-level folder of the content-addressed store made, none writable."""
    artifacts.mkdir(parents=True, exist_ok=True)
    folders = [artifacts / f"{i:02x}" for i in range(256)]
    for folder in folders:
        folder.mkdir(mode=0o555)
    return folders


@contextmanager
def serving(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``brandloop serve`` on ``port``, bound by file modes, until the block ends."""
    argv = [*BRANDLOOP, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            bound_by_file_modes(argv),
            cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def wait_finished(
    client: httpx.Client, job_id: str, headers: dict[str, str], timeout: float = 240
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s")


def ledger_keys(ledger: Path, what: str = "paid") -> Counter[str]:
    """How often each call key is in the fake provider's ledger as ``what`` (``start``: sent,
    ``paid``: answered with an image)."""
    lines = ledger.read_text().splitlines() if ledger.exists() else []
    return Counter(line.split(" ", 1)[1] for line in lines if line.startswith(f"{what} "))


def assert_storage_failed(error: dict[str, Any], *, folders: Path, run_id: str) -> None:
    """The job's error as GET and the event stream show it: typed, naming what failed in plain
    words, the kept run and the route that finishes it; no database URL."""
    assert error["type"] == "storage-failed" and error["status"] == 503, error
    detail = error["detail"]
    assert detail.startswith("storage failed: "), detail
    # a folder of the store, named inside it: never the server's own path
    assert "<artifacts dir>/" in detail, detail
    assert "may not be written by the service" in detail, detail
    assert str(folders) not in detail, detail
    assert f"run {run_id} is kept" in detail, detail
    assert f"POST /v1/runs/{run_id}/resume" in detail, detail
    assert "://" not in detail, detail  # no database URL, with or without its password


def test_a_job_whose_artifact_store_is_read_only_names_it_and_its_run_resumes(
    tmp_path: Path, database_url: str | None, seed: int
) -> None:
    data_dir, ledger = tmp_path / "data", tmp_path / "ledger.txt"
    env = env_for(
        data_dir,
        database_url,
        BRANDLOOP_PROVIDER_PLUGINS="tests.agent.fake_providers:ledger_provider",
        BL_TEST_LEDGER=str(ledger),
        BRANDLOOP_PROCEDURAL_ACCENT_CHANCE="0",
        # every call after the first takes 2 s: the second is in flight when the first one's
        # images cannot be stored, so it is cancelled with it (billing unknown, not sent again)
        BL_TEST_SLOW_FROM="1",
        BL_TEST_SLEEP_S="2",
    )
    admin, creator = make_key(env, "acme", "admin"), make_key(env, "acme", "creator")
    artifacts = data_dir / "artifacts"
    folders = read_only_artifact_store(artifacts)
    port = free_port()
    body = {
        "brief": "a steaming cup of coffee on a wooden table",
        "brand": "Acme Coffee",
        "count": 2,
        "size": "256x256",
        "seed": seed,
        "budget_usd": 1,
    }
    with (
        serving(env, port, tmp_path / "server.log"),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HTTP_TIMEOUT) as client,
    ):
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).status_code == 201
        submitted = client.post("/v1/generations", json=body, headers=creator)
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]

        events = read_sse(client, f"/v1/jobs/{job_id}/events", creator)
        name, ended = events[-1]
        failed = wait_finished(client, job_id, creator)
        run_id = failed["run_id"]
        assert failed["state"] == "failed", failed
        assert_storage_failed(failed["error"], folders=artifacts, run_id=run_id)
        assert name == "end" and ended["state"] == "failed", events[-1]
        assert ended["error"] == failed["error"], ended

        paid_before = ledger_keys(ledger)
        assert paid_before, "the run paid for nothing before its storage failed"
        run = client.get(f"/v1/runs/{run_id}", headers=creator).json()
        # kept, resumable: what it paid for counts (held until the resume settles it)
        assert run["status"] == "running" and run["cost_usd"] > 0, run

        for folder in folders:  # the storage is fixed
            folder.chmod(0o755)
        with ThreadPoolExecutor(2) as pool:  # two clients resume it at once: one job runs it
            answers = list(
                pool.map(
                    lambda _: client.post(f"/v1/runs/{run_id}/resume", headers=creator), (1, 2)
                )
            )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses in ([202, 202], [202, 409]), [answer.text for answer in answers]
        queued = {answer.json()["id"] for answer in answers if answer.status_code == 202}
        assert len(queued) == 1, queued  # a second 202 names the same job
        done = wait_finished(client, queued.pop(), creator)
        assert done["state"] == "succeeded", done
        assert done["result"]["status"] in ("succeeded", "partial"), done["result"]

        trace = client.get(f"/v1/runs/{run_id}/trace", headers=creator).json()
        images = trace["run"]["images"]
        assert images and len(trace["receipts"]) == len(images)
        for image in images:
            served = client.get(f"/v1/artifacts/{image['sha256']}", headers=creator)
            assert served.status_code == 200, served.text
            assert hashlib.sha256(served.content).hexdigest() == image["sha256"]
            receipt = json.loads(read_png_text(served.content)[RECEIPT_KEY])
            assert receipt["run_id"] == run_id, receipt

    paid, started = ledger_keys(ledger, "paid"), ledger_keys(ledger, "start")
    assert max(paid.values()) == 1, f"a call was paid twice: {paid}"
    assert max(started.values()) == 1, f"a call was sent twice: {started}"
    assert set(paid_before) <= set(paid) <= set(started)
    # each call sent is one attempt of the run, counted once. The calls whose images could not
    # be stored are not sent again: they count at their reservation (billing unknown), as does
    # a call still in flight beside the one whose storing failed (it is cancelled with it, and
    # may have been billed); every call that answered is billed
    attempts = trace["attempts"]
    assert sorted(a["idempotency_key"] for a in attempts) == sorted(started), attempts
    for attempt in attempts:
        answered = attempt["idempotency_key"] in paid
        assert attempt["billing"] in (("billed", "unknown") if answered else ("unknown",)), attempt
    assert trace["run"]["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in attempts))
    assert done["cost_usd"] == pytest.approx(trace["run"]["cost_usd"])
