"""The hot lookups read indexes, never a scan of the whole history: each real data-access call
is captured as it runs and its SQLite plan checked (benchmarks/registry_growth.py times them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from brandloop.agent.bandit import arm_stats
from brandloop.api.jobs import store
from brandloop.registry import crud, spend
from brandloop.registry.db import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'plans.db'}")
    database.upgrade()
    yield database
    database.dispose()


def plans_of(db: Database, call: Callable[[Session], Any]) -> list[str]:
    """The plan of every SELECT ``call`` runs, as SQLite reports it."""
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        with db.session() as session:
            call(session)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert seen, "the call ran no query"
    with db.engine.connect() as conn:
        return [
            " | ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {s}", p))
            for s, p in seen
        ]


CALLS: dict[str, tuple[Callable[[Session], Any], str]] = {
    "planner outcome statistics": (
        lambda s: arm_stats(s, brand_id="brand_1", template_ref="t@1"),
        "INDEX sqlite_autoindex_outcome_counts_1 (brand_id=? AND template_ref=?)",
    ),
    "a tenant's newest runs": (
        lambda s: crud.list_runs(s, tenant="acme_co"),
        "INDEX ix_runs_tenant_created_at (tenant=?)",
    ),
    "a tenant's jobs": (
        lambda s: store.list_jobs(s, tenant="acme_co"),
        "INDEX ix_jobs_tenant_created_at (tenant=?)",
    ),
    "the job of a run": (
        lambda s: store.job_for_run(s, tenant="acme_co", run_id="run_1"),
        "INDEX ix_jobs_run_id_tenant (run_id=? AND tenant=?)",
    ),
    "today's spend against the quota": (
        lambda s: spend.quota_used(s, tenant="acme_co"),
        "INDEX ix_spend_reservations_tenant_kind_state (tenant=? AND kind=?",
    ),
    "a run's reserved spend": (
        lambda s: spend.committed(s, tenant="acme_co", run_id="run_1"),
        "INDEX ix_spend_reservations_run_id (run_id=?)",
    ),
    "a subject's audit trail": (
        lambda s: crud.list_audit(s, tenant="acme_co", subject_id="run_1"),
        "INDEX ix_audit_log_tenant_subject (tenant=? AND subject_id=?)",
    ),
    "an artifact": (
        lambda s: crud.get_artifact(s, tenant="acme_co", sha256="ab" * 32),
        "INDEX sqlite_autoindex_artifacts_1 (tenant=? AND sha256=?)",
    ),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_the_lookup_reads_an_index(db: Database, name: str) -> None:
    call, expected = CALLS[name]
    plans = plans_of(db, call)
    assert any(expected in plan for plan in plans), plans
    assert not any(p.startswith("SCAN ") or " | SCAN " in p for p in plans), plans


def test_analyze_does_not_turn_the_planner_statistics_into_a_scan(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    call, expected = CALLS["planner outcome statistics"]
    assert any(expected in plan for plan in plans_of(db, call))


def _full_scans(plans: list[str]) -> list[str]:
    """The steps of ``plans`` that read a whole table (a json list's elements, a constant row
    or a subquery's own rows are no table)."""
    return [
        step
        for plan in plans
        for step in plan.split(" | ")
        if step.startswith("SCAN ")
        and not any(ok in step for ok in ("USING", "VIRTUAL TABLE", "CONSTANT ROW", "anon_"))
    ]


def test_the_cost_metric_reads_only_the_calls_that_count(db: Database) -> None:
    """``brandloop_cost_usd`` (and ``GET /v1/costs``) add to the attempts the calls of runs not
    finished and the calls cancelled runs left in flight: each list is read from its partial
    index, never every call of every cancelled run (the attempts and the reproductions are
    added up by the database: those aggregates are not this)."""
    for call in (
        lambda s: spend.unrecorded_calls(s),  # every tenant's: the metric
        lambda s: spend.unrecorded_calls(s, tenant="acme_co"),  # one tenant's: the report
    ):
        plans = plans_of(db, call)
        assert any("USING INDEX ix_runs_unfinished" in plan for plan in plans), plans
        assert any("USING INDEX ix_spend_reservations_abandoned" in plan for plan in plans), plans
        assert not _full_scans(plans), plans


def test_what_a_run_has_cost_so_far_is_one_indexed_read(db: Database) -> None:
    """A view of a run not finished (``runs list|show``, ``GET /v1/runs/{id}``) adds one
    statement: the run's attempts and its calls, through their run's indexes."""
    plans = plans_of(db, lambda s: spend.run_cost(s, run_id="run_1"))
    assert len(plans) == 1, plans
    (plan,) = plans
    assert "INDEX ix_attempts_run_id (run_id=?)" in plan, plan
    assert "INDEX ix_spend_reservations_run_id (run_id=?)" in plan, plan
    assert "ix_spend_reservations_abandoned" not in plan and not _full_scans(plans), plan
