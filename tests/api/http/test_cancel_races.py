"""A cancel that lands at the edges of a job's run: while a worker is claiming the job (its
state is ``running`` but its run has not begun), the job ends ``cancelled`` (it once stayed
``running`` for good) and so does its run, written then if it had not begun (it was once a
404); just after its run finished, the job ends as the run did (it once said
``cancelled`` beside a succeeded run's delivered, paid-for images)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.api.http.conftest import Keys, brand_kit, wait_job

CLAIM = re.compile(r"^\s*UPDATE jobs SET state=", re.IGNORECASE)
RUN_RESULT = re.compile(r"^\s*UPDATE runs SET .*\bresult=", re.IGNORECASE | re.DOTALL)


def claims_the_job(statement: str, values: list[Any]) -> bool:
    return bool(CLAIM.match(statement)) and "running" in values


def writes_the_run_result(statement: str, values: list[Any]) -> bool:
    return bool(RUN_RESULT.match(statement))


class CommitGate:
    """Holds the thread that commits a statement ``watch`` picks (the database's own events,
    nothing of ours replaced) right after that commit, until the test lets it go."""

    def __init__(self) -> None:
        self.watch: Callable[[str, list[Any]], bool] = claims_the_job
        self.claimed = threading.Event()
        self.go = threading.Event()
        self._local = threading.local()

    def executed(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        values = params.values() if isinstance(params, dict) else params or ()
        if self.watch(statement, list(values)):
            self._local.claiming = True

    def committed(self, session: Session) -> None:
        if getattr(self._local, "claiming", False) and not self.claimed.is_set():
            self._local.claiming = False
            self.claimed.set()
            self.go.wait(30)


@pytest.fixture
def gate() -> Iterator[CommitGate]:
    gate = CommitGate()
    event.listen(Engine, "after_cursor_execute", gate.executed)
    event.listen(Session, "after_commit", gate.committed)
    try:
        yield gate
    finally:
        gate.go.set()
        event.remove(Session, "after_commit", gate.committed)
        event.remove(Engine, "after_cursor_execute", gate.executed)


def test_a_cancel_while_the_worker_claims_the_job_ends_it_cancelled(
    make_client: Callable[..., TestClient], keys: Keys, gate: CommitGate
) -> None:
    client = make_client(workers=1)
    creator = keys["A", "creator"]
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    job: dict[str, Any] = client.post(
        "/v1/generations",
        json={"brief": "a steaming cup on a wooden table", "brand": "Acme Coffee"},
        headers=creator,
    ).json()
    assert gate.claimed.wait(30), "the worker never claimed the job"
    cancelled = client.post(f"/v1/jobs/{job['id']}/cancel", headers=creator)
    assert cancelled.status_code == 200, cancelled.text
    time.sleep(0.5)  # the cancel crosses to the agents' loop while the claim is held
    gate.go.set()
    final = wait_job(client, job["id"], creator, timeout=20)
    assert final["state"] == "cancelled"
    assert final["cost_usd"] == 0
    run = client.get(f"/v1/runs/{final['run_id']}", headers=creator)
    # cancelled before its run began, or with it: either way the job's run is a cancelled run
    assert run.status_code == 200, run.text
    body = run.json()
    assert body["status"] == "cancelled" and body["cost_usd"] == 0
    assert body["brand"] == "Acme Coffee" and body["brief"] == "a steaming cup on a wooden table"
    listed = client.get("/v1/runs?status=cancelled", headers=creator).json()
    assert [r["run_id"] for r in listed] == [final["run_id"]]


def test_a_cancel_just_after_the_run_finished_ends_the_job_as_the_run_did(
    make_client: Callable[..., TestClient], keys: Keys, gate: CommitGate
) -> None:
    gate.watch = writes_the_run_result
    client = make_client(workers=1)
    creator = keys["A", "creator"]
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    job: dict[str, Any] = client.post(
        "/v1/generations",
        json={"brief": "a steaming cup on a wooden table", "brand": "Acme Coffee", "seed": 11},
        headers=creator,
    ).json()
    assert gate.claimed.wait(60), "the run never wrote its result"
    cancelled = client.post(f"/v1/jobs/{job['id']}/cancel", headers=creator)
    assert cancelled.status_code == 200, cancelled.text
    time.sleep(0.5)  # the cancel crosses to the agents' loop while the result's commit is held
    gate.go.set()
    final = wait_job(client, job["id"], creator, timeout=30)
    run = client.get(f"/v1/runs/{final['run_id']}", headers=creator).json()
    assert run["status"] == "succeeded"
    assert final["state"] == "succeeded", final
    assert final["cost_usd"] == run["cost_usd"] > 0
    assert final["result"]["images"] and final["error"] is None
