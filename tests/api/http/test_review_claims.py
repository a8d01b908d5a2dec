"""A review verdict whose process stopped between claiming its run (``awaiting_review`` ->
``running``) and finishing it, on both databases. The stop is real: the thread that committed
the claim is held right there by the database's own commit event (``CommitGate``), as a process
that stalled or died would leave it. Once the claim lapses, the next verdict finishes the run
with the verdict recorded first (two at once: one 200, one 409), or a started service finishes
it on its own; nothing paid for is paid again, the images are delivered once, and the stalled
claimant, let go, writes nothing. (The run once stayed ``running`` for good: every later
verdict a 409, nothing resumed it.)"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from brandloop.api.app import create_app
from brandloop.api.config import ApiSettings
from brandloop.registry.db import Database
from brandloop.registry.models import AttemptRow, AuditRow, RunEventRow
from brandloop.registry.models_money import SpendReservationRow
from brandloop.settings import Settings
from tests.api.http.conftest import Keys, assert_problem, both_databases, brand_kit

GEN = {"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256"}
#: the claim of the replica that stalls lapses after this long
LEASE_S = 1.0
CLAIM = re.compile(r"^\s*UPDATE runs SET status=", re.IGNORECASE)
RENEWAL = re.compile(r"^\s*UPDATE review_claims SET expires_at=", re.IGNORECASE)
RUN_RESULT = re.compile(r"^\s*UPDATE runs SET .*\bresult=", re.IGNORECASE | re.DOTALL)


def claims_the_run(statement: str, values: list[Any]) -> bool:
    """The verdict's claim: the UPDATE moving the run from awaiting_review to running."""
    return (
        bool(CLAIM.match(statement)) and values[:1] == ["running"] and "awaiting_review" in values
    )


def writes_the_run_result(statement: str, values: list[Any]) -> bool:
    return bool(RUN_RESULT.match(statement))


@pytest.fixture(name="settings")
def short_lease(database: str, data_dir: Path) -> Settings:
    return both_databases(database, data_dir).model_copy(update={"review_lease_seconds": LEASE_S})


class CommitGate:
    """Holds the thread that commits a statement ``watch`` picks (by default a verdict's claim
    of its run) right after that commit, until the test lets it go; meanwhile every thread
    that renews a review claim is held too, as in a process that stopped as a whole (the
    replica taking the run over renews its own claim only minutes later). The database's own
    events, nothing of ours replaced."""

    def __init__(self) -> None:
        self.watch: Callable[[str, list[Any]], bool] = claims_the_run
        self.claimed = threading.Event()
        self.go = threading.Event()
        self._local = threading.local()

    def executed(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        values = list(params.values() if isinstance(params, dict) else params or ())
        if self.watch(statement, values):
            self._local.claiming = True
        elif RENEWAL.match(statement) and self.claimed.is_set():
            self._local.renewing = True

    def committed(self, session: Session) -> None:
        if getattr(self._local, "claiming", False) and not self.claimed.is_set():
            self._local.claiming = False
            self.claimed.set()
            self.go.wait(300)  # the test lets it go (at its end at the latest)
        elif getattr(self._local, "renewing", False):
            self._local.renewing = False
            self.go.wait(300)


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


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run waits for review."""
    path = tmp_path / "agent.yaml"
    path.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(path))


@pytest.fixture
def replica(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """Another API process on the same database; ``lease_s`` is its own review lease (so its
    sweep of lapsed claims runs at its start and then every ``lease_s / 2``)."""
    clients: list[TestClient] = []

    def make(lease_s: float) -> TestClient:
        api = ApiSettings(
            workers=2,
            rate_limit_per_minute=100_000,
            rate_limit_burst=10_000,
            auth_failures_per_minute=100_000,
            auth_failures_burst=10_000,
        )
        app = create_app(
            settings.model_copy(update={"review_lease_seconds": lease_s}), api, use_memory=False
        )
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _waiting(client: TestClient, keys: Keys) -> dict[str, Any]:
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    job = client.post(
        "/v1/generations?wait=60", json={**GEN, "seed": 7}, headers=keys["A", "creator"]
    ).json()
    assert job["state"] == "awaiting_review", job
    return dict(job)


def _stored(db: Database, run_id: str) -> dict[str, Any]:
    """What the run has stored that a verdict must neither lose nor make again."""
    with db.session() as session:
        attempts = session.execute(
            select(AttemptRow.id, AttemptRow.artifact_sha256, AttemptRow.cost_usd).where(
                AttemptRow.run_id == run_id
            )
        ).all()
        reservations = session.execute(
            select(SpendReservationRow.id, SpendReservationRow.state).where(
                SpendReservationRow.run_id == run_id, SpendReservationRow.kind == "call"
            )
        ).all()
    return {
        "attempts": sorted((a, s, round(c, 6)) for a, s, c in attempts),
        "reservations": sorted(tuple(r) for r in reservations),
    }


def _review_decisions(db: Database, run_id: str) -> list[str]:
    with db.session() as session:
        payloads = session.scalars(
            select(RunEventRow.payload)
            .where(RunEventRow.run_id == run_id, RunEventRow.node == "review")
            .order_by(RunEventRow.seq)
        ).all()
    return [p.get("action", "") for p in payloads]


def _writes(db: Database, run_id: str) -> tuple[int, int]:
    with db.session() as session:
        events = session.scalar(
            select(func.count()).select_from(RunEventRow).where(RunEventRow.run_id == run_id)
        )
        audit = session.scalar(
            select(func.count()).select_from(AuditRow).where(AuditRow.subject_id == run_id)
        )
    return int(events or 0), int(audit or 0)


@contextmanager
def _letting_go(gate: CommitGate) -> Iterator[None]:
    """Let the held thread go when the block ends, failed or not (before its pool is shut)."""
    try:
        yield
    finally:
        gate.go.set()


def _stall_a_verdict(
    pool: ThreadPoolExecutor, client: TestClient, path: str, body: dict[str, str],
    headers: dict[str, str], gate: CommitGate,
) -> Future[Any]:  # fmt: skip
    stalled = pool.submit(client.post, path, json=body, headers=headers)
    assert gate.claimed.wait(60), "the verdict never claimed the run"
    time.sleep(2 * LEASE_S + 0.5)  # its claim lapses: the stalled process renews nothing
    return stalled


def test_a_verdict_whose_process_stalled_is_finished_by_the_next_one_once(
    make_client: Callable[..., TestClient],
    replica: Callable[..., TestClient],
    keys: Keys,
    db: Database,
    gate: CommitGate,
    policy: None,
) -> None:
    first = make_client()
    # its sweep runs at its start and then not for minutes: the verdicts below meet the claim
    second = replica(lease_s=600)
    job = _waiting(first, keys)
    run_id, path = job["run_id"], f"/v1/review/runs/{job['run_id']}"
    stored = _stored(db, run_id)
    assert stored["attempts"] and stored["reservations"]
    lee, ana = keys.of("A", "lee", "approver"), keys.of("A", "ana", "approver")
    with ThreadPoolExecutor(3) as pool, _letting_go(gate):
        stalled = _stall_a_verdict(pool, first, path, {"decision": "approve"}, lee, gate)
        run = second.get(f"/v1/runs/{run_id}", headers=keys["A", "viewer"]).json()
        assert run["status"] == "running"  # what the stalled process left
        # lee sends the verdict again and ana approves too, at once, through the other replica
        answers = list(
            pool.map(
                lambda h: second.post(
                    path, json={"decision": "approve", "note": "again"}, headers=h
                ),
                (lee, ana),
            )
        )
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        won = next(a for a in answers if a.status_code == 200).json()
        assert won["status"] == "succeeded" and won["decision"] == "approve"
        lost = assert_problem(next(a for a in answers if a.status_code == 409), 409, "conflict")
        assert "being finished by lee's approve" in lost["detail"], lost
        done = second.get(f"/v1/runs/{run_id}", headers=keys["A", "viewer"]).json()
        assert done["status"] == "succeeded" and done["images"], done
        writes = _writes(db, run_id)
        gate.go.set()  # the stalled process wakes up, its claim long taken over
        late = stalled.result(timeout=60)
    detail = assert_problem(late, 409, "conflict")["detail"]
    assert "another took the run over" in detail, detail
    # the run finished once, with lee's verdict; nothing paid for was made or paid again
    assert _review_decisions(db, run_id) == ["request_review", "approved"]
    assert _stored(db, run_id) == stored
    assert _writes(db, run_id) == writes  # the woken process wrote nothing
    final = second.get(f"/v1/jobs/{job['id']}", headers=keys["A", "creator"]).json()
    assert final["state"] == "succeeded" and final["cost_usd"] == job["cost_usd"]
    assert [i["sha256"] for i in final["result"]["images"]] == [i["sha256"] for i in done["images"]]
    for image in done["images"]:
        got = second.get(f"/v1/artifacts/{image['sha256']}", headers=keys["A", "viewer"])
        assert got.status_code == 200 and got.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_started_service_finishes_the_verdict_a_stalled_process_left(
    make_client: Callable[..., TestClient],
    replica: Callable[..., TestClient],
    keys: Keys,
    db: Database,
    gate: CommitGate,
    policy: None,
) -> None:
    first = make_client()
    job = _waiting(first, keys)
    run_id, path = job["run_id"], f"/v1/review/runs/{job['run_id']}"
    stored = _stored(db, run_id)
    lee = keys.of("A", "lee", "approver")
    with ThreadPoolExecutor(1) as pool, _letting_go(gate):
        stalled = _stall_a_verdict(
            pool, first, path, {"decision": "reject", "note": "too orange"}, lee, gate
        )
        second = replica(lease_s=600)  # a service started now: no verdict is given again
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            final = second.get(f"/v1/jobs/{job['id']}", headers=keys["A", "creator"]).json()
            if final["state"] != "awaiting_review":
                break
            time.sleep(0.2)
        run = second.get(f"/v1/runs/{run_id}", headers=keys["A", "viewer"]).json()
        assert not stalled.done()  # the stalled process is still held: the service did it
        assert run["status"] == "failed" and not run.get("images"), run
        assert "rejected in review by lee: too orange" in run["reason"], run
        assert final["state"] == "failed" and final["cost_usd"] == job["cost_usd"], final
        writes = _writes(db, run_id)
        gate.go.set()
        assert stalled.result(timeout=60).status_code == 409
    assert _review_decisions(db, run_id) == ["request_review", "rejected"]
    assert _stored(db, run_id) == stored
    assert _writes(db, run_id) == writes
    with db.session() as session:
        actions = session.scalars(
            select(AuditRow.action).where(AuditRow.subject_id == run_id).order_by(AuditRow.id)
        ).all()
    assert actions == ["run.review.reject", "run.review.taken_over"], actions


def test_a_verdict_whose_process_stalled_after_the_run_finished_settles_its_job(
    make_client: Callable[..., TestClient],
    replica: Callable[..., TestClient],
    keys: Keys,
    db: Database,
    gate: CommitGate,
    policy: None,
) -> None:
    gate.watch = writes_the_run_result  # held after the run's result, before its job settles
    first = make_client()
    second = replica(lease_s=600)
    job = _waiting(first, keys)
    run_id, path = job["run_id"], f"/v1/review/runs/{job['run_id']}"
    stored = _stored(db, run_id)
    lee = keys.of("A", "lee", "approver")
    with ThreadPoolExecutor(1) as pool, _letting_go(gate):
        stalled = _stall_a_verdict(pool, first, path, {"decision": "approve"}, lee, gate)
        run = second.get(f"/v1/runs/{run_id}", headers=keys["A", "viewer"]).json()
        assert run["status"] == "succeeded" and run["images"], run
        again = second.post(path, json={"decision": "approve"}, headers=lee)
        assert again.status_code == 200 and again.json()["status"] == "succeeded", again.text
        final = second.get(f"/v1/jobs/{job['id']}", headers=keys["A", "creator"]).json()
        assert final["state"] == "succeeded", final  # it once stayed awaiting_review for good
        assert final["cost_usd"] == job["cost_usd"] and final["result"]["images"], final
        assert [i["sha256"] for i in final["result"]["images"]] == [
            i["sha256"] for i in run["images"]
        ]
        writes = _writes(db, run_id)
        gate.go.set()
        assert stalled.result(timeout=60).status_code == 409
    assert _review_decisions(db, run_id) == ["request_review", "approved"]
    assert _stored(db, run_id) == stored
    assert _writes(db, run_id) == writes
