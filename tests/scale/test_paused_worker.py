"""Fencing on the scaled-out stack: a worker paused (SIGSTOP) past its lease while another worker
takes its job over, then resumed (SIGCONT), writes nothing and pays for nothing.

The provider is the fake OpenAI server in this process: it bills a call when it has made the
image, whether or not the client is still there, so what the paused worker sent before it was
paused is billed once and nothing after."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.fakes.provider_server import FakeImagesApp, serve
from tests.scale.stack import Stack, job_states, setup_tenant, started_stack

pytestmark = [pytest.mark.server, pytest.mark.slow]

KEY = "sk-test-fencing-0123456789"
LEASE_S = 3.0


@pytest.fixture
def fake() -> Iterator[tuple[FakeImagesApp, str]]:
    app = FakeImagesApp(api_key=KEY, timeout_s=8.0, render=True)
    app.faults.append("timeout")  # the first call takes 8 s, then is billed and answered
    with serve(app) as base_url:
        yield app, base_url


@pytest.fixture
def stack(tmp_path: Path, fake: tuple[FakeImagesApp, str]) -> Iterator[Stack]:
    _, base_url = fake
    with started_stack(
        tmp_path,
        redis_db=10,
        lease_seconds=LEASE_S,
        BRANDLOOP_OPENAI_API_KEY=KEY,
        BRANDLOOP_OPENAI_BASE_URL=base_url,
    ) as running:
        yield running


def _snapshot(database_url: str, run_id: str) -> dict[str, Any]:
    """Everything a worker of this run could write: registry rows and checkpoints."""
    engine = sa.create_engine(database_url)
    queries = {
        "attempts": "SELECT id, outcome, billing, cost_usd FROM attempts WHERE run_id = :r ORDER BY id",
        "events": "SELECT count(*) FROM run_events WHERE run_id = :r",
        "reservations": "SELECT call_key, state, charged_usd, fence FROM spend_reservations "
        "WHERE run_id = :r ORDER BY call_key",
        "run": "SELECT status, cost_usd, finished_at FROM runs WHERE id = :r",
        "job": "SELECT state, cost_usd, finished_at FROM jobs WHERE run_id = :r",
        "artifacts": "SELECT count(*) FROM artifacts WHERE run_id = :r",
        "checkpoints": "SELECT count(*) FROM checkpoints WHERE thread_id = :r",
        "checkpoint_writes": "SELECT count(*) FROM checkpoint_writes WHERE thread_id = :r",
    }
    try:
        with engine.connect() as conn:
            return {
                name: [tuple(row) for row in conn.execute(sa.text(sql), {"r": run_id})]
                for name, sql in queries.items()
            }
    finally:
        engine.dispose()


def _holder(database_url: str, job_id: str) -> tuple[str, int] | None:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT owner, fence FROM job_leases WHERE job_id = :j"), {"j": job_id}
            ).first()
    finally:
        engine.dispose()
    return (str(row[0]), int(row[1])) if row is not None else None


def test_a_worker_paused_past_its_lease_writes_and_pays_nothing(
    stack: Stack, fake: tuple[FakeImagesApp, str]
) -> None:
    app, _ = fake
    api = stack.start_api()
    first, second = stack.start_worker(concurrency=1), stack.start_worker(concurrency=1)
    stack.wait_ready()
    setup_tenant(stack)
    database_url = stack.env["BRANDLOOP_DATABASE_URL"]
    body = {
        "brief": "a steaming cup of coffee, warm morning light",
        "brand": "Acme Coffee",
        "size": "1024x1024",
        "seed": 5,
        "budget_usd": 0.2,
        "model": "openai/gpt-image-1-mini",
    }
    answer = httpx.post(f"{api}/v1/generations", json=body, headers=stack.headers(), timeout=30)
    assert answer.status_code == 202, answer.text
    job_id, run_id = answer.json()["id"], answer.json()["run_id"]

    # the worker holding the job has sent its first (slow) call: pause it there
    deadline = time.monotonic() + 120
    while not app.requests:
        assert time.monotonic() < deadline, stack.logs()
        time.sleep(0.05)
    holder = _holder(database_url, job_id)
    assert holder is not None
    paused = next(w for w in (first, second) if f":{w.pid}:" in holder[0])
    paused.send_signal(signal.SIGSTOP)
    try:
        # the other worker takes the job over once the lease lapses, and finishes it
        while True:
            state = job_states(stack, api, [job_id])[job_id]
            if state["state"] in {"succeeded", "failed", "cancelled"}:
                break
            assert time.monotonic() < deadline, json.dumps(state) + stack.logs()
            time.sleep(0.5)
        assert state["result"] is not None, json.dumps(state) + stack.logs()
        taken = _holder(database_url, job_id)
        assert taken is not None and taken[1] > holder[1], "a takeover grants a newer token"
        time.sleep(9)  # the paused worker's first call is billed meanwhile (8 s at the server)
        before = _snapshot(database_url, run_id)
        requests_before, ledger_before = len(app.requests), dict(app.ledger)
    finally:
        paused.send_signal(signal.SIGCONT)

    # it wakes up with the answer to its first call in its socket, and a lease that moved on
    time.sleep(3 * LEASE_S)
    assert paused.poll() is None, "the resumed worker keeps serving"
    assert _snapshot(database_url, run_id) == before, "the resumed worker wrote something"
    assert len(app.requests) == requests_before, "the resumed worker sent a provider call"
    assert dict(app.ledger) == ledger_before
    assert max(app.ledger.values()) == 1, f"a call was billed twice: {app.ledger}"
    # the call in flight when it was paused was billed by the provider, and the run counts it
    first_key = app.requests[0]["headers"]["idempotency-key"]
    assert app.ledger[first_key] == 1
    unknown = [a for a in before["attempts"] if a[2] == "unknown"]
    assert unknown, before["attempts"]
    reservations = {row[0]: row for row in before["reservations"]}
    assert reservations[first_key][1] == "unknown"
    log = (stack.root / f"worker{(first, second).index(paused)}.log").read_text(errors="replace")
    assert "lease" in log and ("lost" in log or "moved on" in log), log[-3000:]
