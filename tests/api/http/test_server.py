"""``brandloop serve`` in a subprocess on a loopback port, over real HTTP (SSE included), and
a restart: the server is killed with SIGKILL while a job is mid-run; started again, it resumes
the job from its checkpoint and the paid fake backend sees no attempt paid twice."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.http.conftest import brand_kit

ROOT = Path(__file__).resolve().parents[3]
BRANDLOOP = [sys.executable, "-c", "from brandloop.api.cli import main; main()"]
#: how long a client waits for one answer: the server shares the machine with the rest of the
#: suite, and a slow answer under load is not what these tests are about (httpx's default 5 s
#: was once exceeded by a loaded CI host)
HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(data_dir: Path, database_url: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRANDLOOP_", "BL_TEST_"))}
    # a served process loads its models on first use, as before the warm-up, unless a test
    # asks for the warm-up (tests/api/http/test_warm_up.py): most tests here need few of them
    env.update(BRANDLOOP_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    env.update({"BRANDLOOP_WARM_UP": "false", **extra})
    if database_url is not None:
        env["BRANDLOOP_DATABASE_URL"] = database_url
    return env


def make_key(env: dict[str, str], tenant: str, role: str) -> dict[str, str]:
    done = subprocess.run(
        [
            *BRANDLOOP, "keys", "create", "--tenant", tenant, "--principal", f"{role}-user",
            "--role", role, "--json",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    made = json.loads(done.stdout)
    assert made["tenant"] == tenant and made["role"] == role and made["key"].startswith("bl_")
    return {"Authorization": f"Bearer {made['key']}"}


@contextmanager
def server(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*BRANDLOOP, "serve", "--host", "127.0.0.1", "--port", str(port)],
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


def read_sse(
    client: httpx.Client, url: str, headers: dict[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    name = None
    with client.stream("GET", url, headers=headers, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name is not None:
                events.append((name, json.loads(line[6:])))
                if name == "end":
                    break
    return events


@pytest.mark.server
def test_serve_over_real_http_with_sse(tmp_path: Path, database_url: str | None) -> None:
    env = env_for(tmp_path / "data", database_url)
    admin, viewer = make_key(env, "acme", "admin"), make_key(env, "acme", "viewer")
    port = free_port()
    with (
        server(env, port, tmp_path / "server.log"),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HTTP_TIMEOUT) as client,
    ):
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).status_code == 201
        created = client.post(
            "/v1/generations",
            json={"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256"},
            headers=admin,
        )
        assert created.status_code == 202, created.text
        job = created.json()
        events = read_sse(client, job["links"]["events"], viewer)
        names = [n for n, _ in events]
        for wanted in (
            "planned",
            "attempt_started",
            "attempt_finished",
            "scored",
            "decision",
            "done",
            "end",
        ):
            assert wanted in names, names
        final = client.get(f"/v1/jobs/{job['id']}", headers=viewer).json()
        assert final["state"] == "succeeded"
        sha = final["result"]["images"][0]["sha256"]
        image = client.get(f"/v1/artifacts/{sha}", headers=viewer)
        assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert client.get("/readyz").status_code == 200
        assert client.get("/metrics").status_code == 401  # every tenant's figures
        assert client.get("/metrics", headers=viewer).status_code == 403
        metrics = client.get("/metrics", headers=admin).text
        assert 'brandloop_jobs{state="succeeded"} 1.0' in metrics
        assert 'method="POST",route="/v1/generations",status="202"' in metrics
        assert 'brandloop_attempts_total{outcome="accepted",provider="procedural"}' in metrics
        problem = client.get("/v1/jobs/nope", headers=viewer)
        assert (
            problem.status_code == 404
            and problem.headers["content-type"] == "application/problem+json"
        )
    lines = [
        json.loads(line)
        for line in (tmp_path / "server.log").read_text().splitlines()
        if line.startswith("{")
    ]
    requests = [line for line in lines if line.get("msg") == "request"]
    assert requests and all(line["request_id"] for line in requests)
    finished = [line for line in lines if line.get("msg") == "job finished"]
    assert [(line["run_id"], line["job_id"]) for line in finished] == [(job["run_id"], job["id"])]
    assert "bl_" not in (tmp_path / "server.log").read_text()  # no key in the logs


def _ledger(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split(" ", 1)) for line in path.read_text().splitlines() if line]  # type: ignore[misc]


@pytest.mark.server
@pytest.mark.slow
def test_a_killed_server_resumes_its_job_without_paying_twice(
    tmp_path: Path, database_url: str | None, seed: int
) -> None:
    data_dir, ledger = tmp_path / "data", tmp_path / "ledger.txt"
    plugin = {
        "BRANDLOOP_PROVIDER_PLUGINS": "tests.agent.fake_providers:ledger_provider",
        "BL_TEST_LEDGER": str(ledger),
    }
    env = env_for(data_dir, database_url, **plugin)
    admin = make_key(env, "acme", "admin")
    port = free_port()
    slow = {**env, "BL_TEST_SLOW_FROM": "1", "BL_TEST_SLEEP_S": "120"}
    with (
        server(slow, port, tmp_path / "server1.log") as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HTTP_TIMEOUT) as client,
    ):
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).status_code == 201
        job = client.post(
            "/v1/generations",
            json={
                "brief": "a steaming cup",
                "brand": "Acme Coffee",
                "size": "256x256",
                "count": 2,
                "seed": seed,
                "budget_usd": 1,
            },
            headers=admin,
        ).json()
        deadline = time.monotonic() + 180
        while not (
            sum(1 for kind, _ in _ledger(ledger) if kind == "paid") >= 1
            and sum(1 for kind, _ in _ledger(ledger) if kind == "start") >= 2
        ):
            assert time.monotonic() < deadline, "the job never reached the kill point"
            time.sleep(0.05)
        time.sleep(0.3)
        assert client.get(f"/v1/jobs/{job['id']}", headers=admin).json()["state"] == "running"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    paid_before = [key for kind, key in _ledger(ledger) if kind == "paid"]
    assert len(paid_before) == 1

    with (
        server(env, port, tmp_path / "server2.log"),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HTTP_TIMEOUT) as client,
    ):
        deadline = time.monotonic() + 240
        while (state := client.get(f"/v1/jobs/{job['id']}", headers=admin).json()["state"]) in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline, "the job did not finish after the restart"
            time.sleep(0.2)
        assert state == "succeeded"
        final = client.get(f"/v1/jobs/{job['id']}", headers=admin).json()
        assert len(final["result"]["images"]) == 2
        trace = client.get(f"/v1/runs/{job['run_id']}/trace", headers=admin).json()
    paid = Counter(key for kind, key in _ledger(ledger) if kind == "paid")
    assert max(paid.values()) == 1, f"an attempt was paid twice: {paid}"
    assert all(paid[key] == 1 for key in paid_before)
    assert {a["idempotency_key"] for a in trace["attempts"] if a["artifact_sha256"]} == set(paid)
    assert "resuming job" in (tmp_path / "server2.log").read_text()
