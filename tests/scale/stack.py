"""A scaled-out stack for tests and the benchmark: API replicas and Celery workers as real
``brandloop`` processes sharing one PostgreSQL database, Redis, a Chroma server and an
artifacts directory, with the ledger fake provider (tests/agent/fake_providers.py) behind them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
BRANDLOOP = str(Path(sys.executable).with_name("brandloop"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def fresh_database(base_url: str) -> Iterator[str]:
    """A new database on the PostgreSQL server, dropped afterwards."""
    name = f"bl_scale_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield base_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Stack:
    root: Path
    env: dict[str, str]
    apis: list[tuple[subprocess.Popen[bytes], str]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    key: str = ""

    @property
    def ledger(self) -> Path:
        return Path(self.env["BL_TEST_LEDGER"])

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        data_dir = self.root / name
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {**self.env, "BRANDLOOP_DATA_DIR": str(data_dir)}
        with (self.root / f"{name}.log").open("wb") as log:  # the child keeps its own handle
            return subprocess.Popen(
                [BRANDLOOP, *args], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def cli(self, *args: str) -> str:
        env = {**self.env, "BRANDLOOP_DATA_DIR": str(self.root / "cli")}
        done = subprocess.run(
            [BRANDLOOP, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def migrate(self) -> None:
        """The deployment's explicit migration step: replicas and workers refuse an old schema."""
        self.cli("db", "upgrade")

    def start_api(self) -> str:
        port = free_port()
        name = f"api{len(self.apis)}"
        proc = self._spawn(["serve", "--port", str(port), "--workers", "0"], name)
        base = f"http://127.0.0.1:{port}"
        self.apis.append((proc, base))
        return base

    def start_worker(self, concurrency: int) -> subprocess.Popen[bytes]:
        name = f"worker{len(self.workers)}"
        proc = self._spawn(
            ["worker", "--concurrency", str(concurrency), "--loglevel", "WARNING"], name
        )
        self.workers.append(proc)
        return proc

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        for proc, base in self.apis:
            while True:
                assert proc.poll() is None, self.logs()
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                assert time.monotonic() < deadline, self.logs()
                time.sleep(0.2)

    def logs(self) -> str:
        """Each process's log: its errors and tracebacks (wherever they are), then its tail."""
        return "\n".join(
            f"--- {p.name}\n{_errors(text)}{text[-3000:]}"
            for p in sorted(self.root.glob("*.log"))
            for text in [p.read_text(errors="replace")]
        )

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def stop(self) -> None:
        for proc in [*self.workers, *(p for p, _ in self.apis)]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, *(p for p, _ in self.apis)]:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def paid_counts(self) -> Counter[str]:
        if not self.ledger.exists():
            return Counter()
        lines = self.ledger.read_text().splitlines()
        return Counter(line.split(" ", 1)[1] for line in lines if line.startswith("paid "))


def _errors(log: str, limit: int = 6000) -> str:
    """The lines of a log that say something failed, with a traceback's lines after them."""
    kept: list[str] = []
    lines = log.splitlines()
    for index, line in enumerate(lines):
        if '"level": "error"' in line or "Traceback" in line or "ERROR" in line:
            kept.extend(lines[index : index + 30])
    found = "\n".join(dict.fromkeys(kept))[:limit]
    return f"[errors]\n{found}\n[tail]\n" if found else ""


def stack_env(
    root: Path,
    *,
    database_url: str,
    redis_url: str,
    chroma_host: str | None,
    chroma_port: str | None,
    provider_latency_s: float,
    lease_seconds: float = 3.0,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRANDLOOP_", "BL_TEST_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "BRANDLOOP_DATABASE_URL": database_url,
            "BRANDLOOP_QUEUE": "celery",
            "BRANDLOOP_REDIS_URL": redis_url,
            "BRANDLOOP_ARTIFACTS_DIR": str(root / "shared-artifacts"),
            "BRANDLOOP_JOB_LEASE_SECONDS": str(lease_seconds),
            "BRANDLOOP_CELERY_VISIBILITY_TIMEOUT_S": "60",
            "BRANDLOOP_PROVIDER_PLUGINS": "tests.agent.fake_providers:ledger_provider",
            "BL_TEST_LEDGER": str(root / "ledger.txt"),
            "BL_TEST_SLOW_FROM": "0",
            "BL_TEST_SLEEP_S": str(provider_latency_s),
            "BRANDLOOP_API_RATE_LIMIT_PER_MINUTE": "100000",
            "BRANDLOOP_API_RATE_LIMIT_BURST": "10000",
        }
    )
    if chroma_host:
        env["BRANDLOOP_CHROMA_HOST"] = chroma_host
        env["BRANDLOOP_CHROMA_PORT"] = chroma_port or "8000"
    return env


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def setup_tenant(stack: Stack) -> None:
    """An admin key and the Acme Coffee brand, made through the CLI and the API."""
    stack.key = json.loads(
        stack.cli(
            "keys",
            "create",
            "--tenant",
            "default",
            "--principal",
            "ops",
            "--role",
            "admin",
            "--json",
        )
    )["key"]
    import yaml

    kit = yaml.safe_load((ROOT / "examples/brands/acme-coffee.yaml").read_text())
    base = stack.apis[0][1]
    answer = httpx.post(f"{base}/v1/brands", json=kit, headers=stack.headers(), timeout=30)
    assert answer.status_code in (200, 201), answer.text


def submit(stack: Stack, base: str, index: int, *, size: str = "128x128") -> str:
    body: dict[str, Any] = {
        "brief": f"a steaming cup of coffee, warm morning light, scene {index}",
        "brand": "Acme Coffee",
        "count": 1,
        "size": size,
        "seed": 1000 + index,
        "budget_usd": 0.20,  # room for a replan: this test is about crashes, not first-round quality
    }
    answer = httpx.post(f"{base}/v1/generations", json=body, headers=stack.headers(), timeout=30)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def job_states(stack: Stack, base: str, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    found = {}
    with httpx.Client(base_url=base, headers=stack.headers(), timeout=30) as client:
        for job_id in job_ids:
            answer = client.get(f"/v1/jobs/{job_id}")
            assert answer.status_code == 200, answer.text
            found[job_id] = answer.json()
    return found


@contextlib.contextmanager
def started_stack(
    root: Path,
    *,
    redis_db: int,
    provider_latency_s: float = 0.15,
    lease_seconds: float = 5.0,
    **extra_env: str,
) -> Iterator[Stack]:
    """A migrated stack on a fresh database and a flushed Redis database; no process started
    yet. ``extra_env`` is added to every process's environment."""
    from tests.services import redis_test_url, service_env

    base = service_env("BRANDLOOP_TEST_POSTGRES_URL")
    redis_url = redis_test_url(redis_db)
    flush_redis(redis_url)
    with fresh_database(base) as database_url:
        env = stack_env(
            root,
            database_url=database_url,
            redis_url=redis_url,
            chroma_host=None,
            chroma_port=None,
            provider_latency_s=provider_latency_s,
            lease_seconds=lease_seconds,
        )
        running = Stack(root, {**env, **extra_env})
        running.migrate()
        try:
            yield running
        finally:
            running.stop()
            flush_redis(redis_url)
