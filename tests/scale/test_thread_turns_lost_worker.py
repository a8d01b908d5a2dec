"""A thread with several queued follow-ups and a worker lost mid-turn, on the scaled-out stack
(PostgreSQL, Redis, two Celery workers of two slots each): the lost turn is resumed within a
few lease periods, the turns run in order, and another tenant's job is not held up.

Before session 26 a follow-up waiting for an earlier turn held a worker slot (and its lease)
while it waited, up to 10 minutes: with the turn's worker killed (SIGKILL), the other worker's
slots held waiting turns, the sweep sent the lost turn again and again with no slot free to
run it, the waiting turns were let go by the 10-minute cap and ran before it (out of order),
and every other tenant's job waited behind them (docs/http-api.md, Threads; docs/runbook.md).
"""

from __future__ import annotations

import itertools
import json
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.scale.stack import ROOT, Stack, job_states, setup_tenant, started_stack

pytestmark = [pytest.mark.server, pytest.mark.slow]

LEASE_S = 2.0
FINAL = {"succeeded", "failed", "cancelled"}
FOLLOW_UPS = ["add a straw", "add a lemon slice", "warmer", "add a striped napkin", "brighter"]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with started_stack(
        tmp_path, redis_db=14, lease_seconds=LEASE_S, provider_latency_s=1.5
    ) as running:
        yield running


def _state_and_holder(database_url: str, job_id: str) -> tuple[str, str]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT j.state, coalesce(l.owner, '') FROM jobs j "
                    "LEFT JOIN job_leases l ON l.job_id = j.id WHERE j.id = :id"
                ),
                {"id": job_id},
            ).one()
    finally:
        engine.dispose()
    return str(row[0]), str(row[1])


def _other_tenant(stack: Stack) -> dict[str, str]:
    import yaml

    key = json.loads(
        stack.cli(
            "keys", "create", "--tenant", "other", "--principal", "ops", "--role", "admin", "--json"
        )
    )["key"]
    headers = {"Authorization": f"Bearer {key}"}
    kit = yaml.safe_load((ROOT / "examples/brands/acme-coffee.yaml").read_text())
    added = httpx.post(f"{stack.apis[0][1]}/v1/brands", json=kit, headers=headers, timeout=30)
    assert added.status_code in (200, 201), added.text
    return headers


def _wait_final(
    stack: Stack, base: str, jobs: list[str], seconds: float
) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        states = job_states(stack, base, jobs)
        if all(s["state"] in FINAL for s in states.values()):
            return states
        assert time.monotonic() < deadline, (
            json.dumps({k: v["state"] for k, v in states.items()}) + stack.logs()
        )
        time.sleep(0.5)


def test_a_lost_workers_turn_resumes_in_order_and_other_tenants_are_not_held_up(
    stack: Stack,
) -> None:
    base = stack.start_api()
    workers = [stack.start_worker(concurrency=2), stack.start_worker(concurrency=2)]
    stack.wait_ready()
    setup_tenant(stack)
    other = _other_tenant(stack)
    with httpx.Client(base_url=base, headers=stack.headers(), timeout=30) as client:
        made = client.post(
            "/v1/threads",
            json={
                "brand": "Acme Coffee",
                "title": "patio",
                "message": "an iced latte on a patio table",
                "size": "128x128",
                "count": 1,
            },
        )
        assert made.status_code == 201, made.text
        thread_id = made.json()["id"]
        jobs = [made.json()["messages"][0]["job"]["id"]]
        for content in FOLLOW_UPS:
            sent = client.post(f"/v1/threads/{thread_id}/messages", json={"content": content})
            assert sent.status_code == 202, sent.text
            jobs.append(sent.json()["job"]["id"])

    # the second turn running on a worker: kill that worker outright
    database_url = stack.env["BRANDLOOP_DATABASE_URL"]
    deadline = time.monotonic() + 90
    doomed = None
    while doomed is None:
        assert time.monotonic() < deadline, stack.logs()
        state, holder = _state_and_holder(database_url, jobs[1])
        if state == "running":
            doomed = next((w for w in workers if f":{w.pid}:" in holder), None)
        time.sleep(0.05)
    time.sleep(0.5)  # into its first provider call
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    killed = time.monotonic()

    # another tenant's small job runs meanwhile on the worker left
    theirs = httpx.post(
        f"{base}/v1/generations",
        json={"brief": "a paper cup", "brand": "Acme Coffee", "size": "64x64"},
        headers=other,
        timeout=30,
    )
    assert theirs.status_code == 202, theirs.text
    deadline = time.monotonic() + 40
    while (found := httpx.get(f"{base}/v1/jobs/{theirs.json()['id']}", headers=other).json())[
        "state"
    ] not in FINAL:
        assert time.monotonic() < deadline, json.dumps(found) + stack.logs()
        time.sleep(0.5)
    assert found["state"] == "succeeded", found

    # the lost turn is resumed (leases of 2 s: well within a minute), then the others, in order
    states = _wait_final(stack, base, jobs, 120)
    assert time.monotonic() - killed < 120
    turns = [states[j] for j in jobs]
    assert all(t["state"] != "cancelled" and t["result"]["attempts"] > 0 for t in turns), turns
    for before, after in itertools.pairwise(turns):
        assert datetime.fromisoformat(after["started_at"]) >= datetime.fromisoformat(
            before["finished_at"]
        ), (before, after)
    paid = stack.paid_counts()
    assert paid and max(paid.values()) == 1, [k for k, n in paid.items() if n > 1]
