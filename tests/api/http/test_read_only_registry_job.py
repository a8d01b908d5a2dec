"""A job whose registry turns read-only while its run goes on ends clearly once the registry
can be written again - ``failed`` with a 503 ``storage-failed`` error naming the read-only
registry, its run kept for a resume - never ``running`` for good (nothing re-runs a job left
``running`` before the service restarts); a resume then finishes the run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, brand_kit, wait_job
from tests.backends import steady_procedural

GEN = {"brief": "a steaming cup", "brand": "Acme Coffee", "size": "64x64"}
#: the run's and the job's lease: short, so that a lease left held lapses within the test
LEASE_S = 3.0


class GatedProvider:
    """The procedural renderer, each call held until ``release`` is set."""

    name = "procedural"

    def __init__(self) -> None:
        self.inner = steady_procedural()
        self.called = False
        self.release = False

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.called = True
        while not self.release:
            await asyncio.sleep(0.02)
        return await self.inner.generate(request)


@contextmanager
def _admin(db: Database) -> Iterator[sa.Connection]:
    url = make_url(db.url)
    engine = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SET default_transaction_read_only = off"))
            yield conn
    finally:
        engine.dispose()


def _set_read_only(db: Database, read_only: bool) -> None:
    """Every new transaction on the registry's database read-only (or not again), and its open
    connections dropped, so the service's pool reconnects under the setting (PostgreSQL's own
    read-only mode, as a read-only SQLite file is to the connections that open it)."""
    name = make_url(db.url).database
    with _admin(db) as conn:
        conn.execute(
            sa.text(
                f'ALTER DATABASE "{name}" SET default_transaction_read_only = '
                f"{'on' if read_only else 'off'}"
            )
        )
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )


def _job_state(db: Database, job_id: str) -> tuple[str, dict[str, object] | None]:
    with db.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT state, error FROM jobs WHERE id = :id"), {"id": job_id}
        ).one()
    return str(row[0]), row[1]


@pytest.mark.databases("postgres")
def test_a_job_whose_registry_turns_read_only_ends_storage_failed_once_it_is_writable(
    settings: Settings, db: Database
) -> None:
    """PostgreSQL only: its read-only mode binds every connection the service opens, as a test
    running as root cannot make a SQLite file bind an in-process service (file modes do not
    bind root; test_storage_failure.py drops that capability in a subprocess)."""
    keys = Keys(db)
    settings = settings.model_copy(update={"job_lease_seconds": LEASE_S})
    provider = GatedProvider()
    with client_with(settings, db, provider, workers=1) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        submitted = client.post("/v1/generations", json=GEN, headers=keys["A", "creator"])
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        deadline = time.monotonic() + 60
        while not provider.called:  # the run has begun, the job is running
            assert time.monotonic() < deadline, "the run never called its provider"
            time.sleep(0.02)
        _set_read_only(db, True)
        try:
            provider.release = True
            time.sleep(3)  # the run's next write fails, and so does recording the job's end
            assert _job_state(db, job_id)[0] == "running"
        finally:
            _set_read_only(db, False)
        deadline = time.monotonic() + 60
        state, error = _job_state(db, job_id)
        while state == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            state, error = _job_state(db, job_id)
        assert state == "failed", f"the job is still {state} with the registry writable again"
        assert error is not None and error["type"] == "storage-failed", error
        assert error["status"] == 503, error
        assert "the registry is read-only" in str(error["detail"]), error
        run_id = submitted.json()["run_id"]
        assert f"run {run_id} is kept" in str(error["detail"]), error
        # the run's lease could not be given up either: it lapses (LEASE_S), then a resume runs
        deadline = time.monotonic() + 60
        resumed = client.post(f"/v1/runs/{run_id}/resume", headers=keys["A", "creator"])
        while resumed.status_code == 409 and time.monotonic() < deadline:
            time.sleep(0.5)
            resumed = client.post(f"/v1/runs/{run_id}/resume", headers=keys["A", "creator"])
        assert resumed.status_code == 202, resumed.text
        done = wait_job(client, resumed.json()["id"], keys["A", "creator"], timeout=120)
        assert done["state"] == "succeeded", done


#: PostgreSQL refusing a job's update as a read-only transaction refuses it (SQLSTATE 25006)
_REFUSE_JOB_UPDATES = (
    """CREATE FUNCTION bl_test_refuse_job_update() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'cannot execute UPDATE in a read-only transaction'
            USING ERRCODE = 'read_only_sql_transaction';
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER bl_test_refuse_job_update BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION bl_test_refuse_job_update()""",
)
_ALLOW_JOB_UPDATES = (
    "DROP TRIGGER IF EXISTS bl_test_refuse_job_update ON jobs",
    "DROP FUNCTION IF EXISTS bl_test_refuse_job_update()",
)


def _job_updates(db: Database, *, refused: bool) -> None:
    with db.engine.begin() as conn:
        for statement in _REFUSE_JOB_UPDATES if refused else _ALLOW_JOB_UPDATES:
            conn.execute(sa.text(statement))


@pytest.fixture
def always_review(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run waits for review (set after ``settings``, which clears ``BRANDLOOP_*``)."""
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))


@pytest.mark.databases("postgres")
def test_a_verdict_whose_job_cannot_be_settled_is_applied_and_the_job_settles_later(
    always_review: None, settings: Settings, db: Database
) -> None:
    """The registry refuses the job's update right after a verdict has finished its run (it
    turned read-only between the two transactions): the verdict is applied - a 200 with the
    run's status, not a bare 500 - and the job, left ``awaiting_review`` meanwhile, is settled
    as the run ended once the registry takes writes again, without a restart."""
    keys = Keys(db)
    with client_with(settings, db, steady_procedural(), workers=1) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        job = client.post("/v1/generations?wait=120", json=GEN, headers=keys["A", "creator"])
        assert job.json()["state"] == "awaiting_review", job.text
        job_id, run_id = job.json()["id"], job.json()["run_id"]

        _job_updates(db, refused=True)
        try:
            verdict = client.post(
                f"/v1/review/runs/{run_id}",
                json={"decision": "approve"},
                headers=keys["A", "approver"],
            )
            assert verdict.status_code == 200, verdict.text
            assert verdict.json()["status"] == "succeeded", verdict.text
            run = client.get(f"/v1/runs/{run_id}", headers=keys["A", "viewer"]).json()
            assert run["status"] == "succeeded", run
            time.sleep(1.5)  # tried again meanwhile, refused each time
            assert _job_state(db, job_id)[0] == "awaiting_review"
        finally:
            _job_updates(db, refused=False)
        done = wait_job(client, job_id, keys["A", "creator"], timeout=60)
        assert done["state"] == "succeeded", done
        assert done["result"]["status"] == "succeeded", done
        assert done["cost_usd"] == pytest.approx(run["cost_usd"]), (done, run)
        review = client.get("/v1/review/runs", headers=keys["A", "approver"])
        assert run_id not in review.text, review.text  # it left the review queue
