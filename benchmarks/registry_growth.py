"""Registry lookups and the planner's outcome statistics as history accumulates.

For each size the registry gets that many finished runs (4 attempts, an artifact, a job and
an audit entry each) for the measured tenant's brand, and as many again for another tenant,
inserted in bulk. Then each hot-path query is timed (median of ``--repeat``) through the real
data-access functions, and its plan is printed (SQLite ``EXPLAIN QUERY PLAN``; PostgreSQL
``EXPLAIN``), so a scan shows. The baseline is the smallest size: a flat cost stays near it.

Beside them each tenant gets a fifth as many cancelled runs, each with two provider calls in the
spend ledger, settled with their attempts recorded (one in 20 also has a call its process left
in flight: ``unknown``, no attempt, abandoned when the run was cancelled), and three runs still
running with a call in flight. ``total_usd`` (the ``brandloop_cost_usd`` metric, every scrape of
``/metrics``) and ``spend_lines`` (what ``GET /v1/costs`` adds up, here the tenant's whole
history, the costs page's widest period) count them; ``unrecorded_calls`` is the part of
``total_usd`` that reads those calls (the rest is the database's sums of every attempt and of
every reproduction's calls).

``arm_stats`` (the planner's outcome statistics) reads the brand's outcome counts, which
``crud.upsert_attempt`` keeps as attempts are recorded; the bulk load here fills them the way
migration 0203 does, from the attempts inserted.

Usage: .venv/bin/python benchmarks/registry_growth.py [--sizes 1000,10000,50000]
       [--database-url postgresql+psycopg://...]   (an empty database; default: SQLite in a tmp dir)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.orm import Session


def _bulk_cancelled(session: Session, tenant: str, runs: int, offset: int) -> None:
    """Cancelled runs with their calls in the spend ledger, and three runs still running."""
    from brandloop.registry.models import AttemptRow, RunRow
    from brandloop.registry.models_money import SpendReservationRow

    # the ledger before migration 0940 has no abandoned_at: the code before it is measured too
    marks = "abandoned_at" in SpendReservationRow.__table__.c
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for base in range(0, runs, 2000):
        n = min(2000, runs - base)
        run_rows, attempt_rows, calls = [], [], []
        for i in range(base, base + n):
            run_id = f"run_{tenant}_cancelled_{offset + i}"
            at = start + timedelta(seconds=offset + i)
            run_rows.append(
                {
                    "id": run_id, "tenant": tenant, "brand_id": f"brand_{tenant}",
                    "brand_name": "Acme Coffee", "brief": "b", "request": {},
                    "status": "cancelled", "reason": "cancelled while running",
                    "template_ref": "t@1", "cost_usd": 0.02, "attempt_count": 2,
                    "accepted_count": 0, "created_at": at, "finished_at": at,
                }
            )  # fmt: skip
            for j in range(2):
                attempt_rows.append(
                    {
                        "id": f"att_{run_id}_{j}", "run_id": run_id, "iteration": 0,
                        "model": "procedural/draft", "template_ref": "t@1", "prompt": "p",
                        "negative_prompt": "", "seed_requested": j, "width": 64, "height": 64,
                        "params": {}, "outcome": "rejected", "artifact_sha256": None,
                        "idempotency_key": f"idem_{run_id}_{j}", "tries": 1, "cost_usd": 0.01,
                        "latency_ms": 120.0, "cache_hit": False, "created_at": at,
                    }
                )  # fmt: skip
                calls.append(_call(tenant, run_id, j, at, "settled", [f"att_{run_id}_{j}"]))
            if i % 20 == 0:
                call = _call(tenant, run_id, 2, at, "unknown", [f"att_{run_id}_2"])
                if marks:
                    call["abandoned_at"] = at
                calls.append(call)
        session.execute(insert(RunRow), run_rows)
        session.execute(insert(AttemptRow), attempt_rows)
        session.execute(insert(SpendReservationRow), calls)
    if offset == 0:
        for i in range(3):
            run_id = f"run_{tenant}_running_{i}"
            session.execute(
                insert(RunRow),
                {
                    "id": run_id, "tenant": tenant, "brand_id": f"brand_{tenant}",
                    "brand_name": "Acme Coffee", "brief": "b", "request": {},
                    "status": "running", "reason": "", "template_ref": "t@1", "cost_usd": 0.0,
                    "attempt_count": 0, "accepted_count": 0, "created_at": start,
                },
            )  # fmt: skip
            session.execute(
                insert(SpendReservationRow),
                _call(tenant, run_id, 0, start, "held", [f"att_{run_id}_0"]),
            )


def _call(
    tenant: str, run_id: str, j: int, at: datetime, state: str, attempt_ids: list[str]
) -> dict[str, Any]:
    return {
        "id": f"res_{run_id}_{j}", "kind": "call", "tenant": tenant, "run_id": run_id,
        "call_key": f"call_{run_id}_{j}", "provider": "procedural", "model": "procedural/draft",
        "amount_usd": 0.04, "charged_usd": 0.01 if state == "settled" else None, "state": state,
        "billing": {"settled": "billed", "unknown": "unknown"}.get(state),
        "attempt_ids": attempt_ids, "note": "", "created_at": at,
    }  # fmt: skip


def _bulk(session: Session, tenant: str, brand_id: str, runs: int, offset: int) -> None:
    from brandloop.registry.models import ArtifactRow, AttemptRow, AuditRow, RunRow
    from brandloop.registry.models_service import JobRow

    start = datetime(2026, 1, 1, tzinfo=UTC)
    for base in range(0, runs, 2000):
        n = min(2000, runs - base)
        run_rows, attempt_rows, artifacts, jobs, audits = [], [], [], [], []
        for i in range(base, base + n):
            run_id = f"run_{tenant}_{offset + i}"
            at = start + timedelta(seconds=offset + i)
            run_rows.append(
                {
                    "id": run_id, "tenant": tenant, "brand_id": brand_id,
                    "brand_name": "Acme Coffee", "brief": "b", "request": {},
                    "status": "succeeded", "reason": "", "template_ref": "t@1", "cost_usd": 0.01,
                    "attempt_count": 4, "accepted_count": 1, "created_at": at, "finished_at": at,
                }
            )  # fmt: skip
            for j in range(4):
                attempt_rows.append(
                    {
                        "id": f"att_{run_id}_{j}", "run_id": run_id, "iteration": 0,
                        "model": f"procedural/{('draft', 'studio')[j % 2]}",
                        "template_ref": f"t@{1 + (i % 3)}", "prompt": "p",
                        "negative_prompt": "", "seed_requested": j, "width": 64, "height": 64,
                        "params": {}, "outcome": ("accepted", "rejected")[j % 2],
                        "artifact_sha256": None, "idempotency_key": f"idem_{run_id}_{j}",
                        "tries": 1, "cost_usd": 0.0025, "latency_ms": 120.0, "cache_hit": False,
                        "created_at": at,
                    }
                )  # fmt: skip
            sha = uuid.uuid5(uuid.NAMESPACE_OID, run_id).hex * 2
            artifacts.append(
                {
                    "tenant": tenant, "sha256": sha, "path": "/x", "media_type": "image/png",
                    "width": 64, "height": 64, "size_bytes": 1, "run_id": run_id,
                    "attempt_id": None, "receipt": None, "created_at": at,
                }
            )  # fmt: skip
            jobs.append(
                {
                    "id": f"job_{run_id}", "tenant": tenant, "kind": "generation",
                    "state": "succeeded", "request": {}, "run_id": run_id,
                    "cancel_requested": False, "cost_usd": 0.01, "created_at": at,
                }
            )  # fmt: skip
            audits.append(
                {
                    "tenant": tenant, "actor": "ana", "action": "run.approved", "at": at,
                    "subject_type": "run", "subject_id": run_id, "detail": {},
                }
            )  # fmt: skip
        for table, rows in (
            (RunRow, run_rows), (AttemptRow, attempt_rows), (ArtifactRow, artifacts),
            (JobRow, jobs), (AuditRow, audits),
        ):  # fmt: skip
            session.execute(insert(table), rows)


#: the bulk attempts have no quality setting (their params are empty): the model's default, ""
OUTCOME_COUNTS = (
    "INSERT INTO outcome_counts (brand_id, template_ref, model, quality, outcome, attempts, "
    "latency_ms_total) SELECT r.brand_id, a.template_ref, a.model, '', a.outcome, COUNT(*), "
    "SUM(a.latency_ms) FROM attempts a JOIN runs r ON r.id = a.run_id "
    "WHERE r.brand_id IS NOT NULL GROUP BY r.brand_id, a.template_ref, a.model, a.outcome"
)


def _plan(session: Session, statement: Any) -> str:
    compiled = statement.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
    dialect = session.get_bind().dialect.name
    prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
    rows = session.execute(text(prefix + str(compiled))).all()
    return " | ".join(str(r[-1]) for r in rows)


def _plans_of(session: Session, call: Callable[[Session], Any]) -> list[str]:
    """The plan of every SELECT ``call`` runs, as it ran (its statements captured)."""
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        call(session)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    connection = session.connection()
    return [
        " | ".join(str(r[-1]) for r in connection.exec_driver_sql(prefix + statement, parameters))
        for statement, parameters in seen
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from sqlalchemy import select

    from brandloop.agent.bandit import arm_stats
    from brandloop.api.jobs import store
    from brandloop.registry import crud, spend
    from brandloop.registry.costs import spend_lines, total_usd
    from brandloop.registry.db import Database
    from brandloop.registry.models import AuditRow, RunRow

    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'growth.db'}"
    db = Database(url)
    db.upgrade()
    done = 0
    rows: list[tuple[int, dict[str, float]]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        with db.session() as session:
            for tenant in ("acme_co", "acme-co"):
                _bulk(session, tenant, f"brand_{tenant}", size - done, done)
                _bulk_cancelled(session, tenant, (size - done) // 5, done // 5)
        done = size
        with db.session() as session:
            session.execute(text("DELETE FROM outcome_counts"))
            session.execute(text(OUTCOME_COUNTS))
        if db.dialect == "postgresql":
            with db.engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
        last = f"run_acme_co_{size - 1}"
        queries: dict[str, Callable[[Session], Any]] = {
            "list_runs": lambda s: crud.list_runs(s, tenant="acme_co"),
            "get_run": lambda s, r=last: crud.get_run(s, tenant="acme_co", run_id=r),
            "list_jobs": lambda s: store.list_jobs(s, tenant="acme_co"),
            "job_for_run": lambda s, r=last: store.job_for_run(s, tenant="acme_co", run_id=r),
            "quota_used": lambda s: spend.quota_used(s, tenant="acme_co"),
            "attempt_by_key": lambda s, r=last: crud.attempt_by_key(
                s, idempotency_key=f"idem_{r}_0"
            ),
            "audit_of_run": lambda s, r=last: crud.list_audit(s, tenant="acme_co", subject_id=r),
            "arm_stats": lambda s: arm_stats(s, brand_id="brand_acme_co", template_ref="t@1"),
            "total_usd": total_usd,
            "unrecorded_calls": lambda s: spend.unrecorded_calls(s),
            "spend_lines": lambda s: list(spend_lines(s, tenant="acme_co")),
        }
        medians: dict[str, float] = {}
        with db.session() as session:
            for name, query in queries.items():
                query(session)
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    query(session)
                    times.append((time.perf_counter() - started) * 1000)
                medians[name] = statistics.median(times)
            if size == done and not rows:
                plans = {
                    "list_runs": select(RunRow)
                    .where(RunRow.tenant == "acme_co")
                    .order_by(RunRow.created_at.desc())
                    .limit(50),
                    "audit_of_run": select(AuditRow).where(
                        AuditRow.tenant == "acme_co", AuditRow.subject_id == last
                    ),
                }
                for name, statement in plans.items():
                    print(f"plan {name}: {_plan(session, statement)}")
                for n, plan in enumerate(_plans_of(session, total_usd), 1):
                    print(f"plan total_usd query {n}: {plan}")
        rows.append((size, medians))
        print(f"{size:>6} runs/tenant: " + ", ".join(f"{k} {v:.2f} ms" for k, v in medians.items()))
    names = list(rows[0][1])
    print()
    print("| query | " + " | ".join(f"{size:,} runs (ms)" for size, _ in rows) + " |")
    print("|---|" + "---:|" * len(rows))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{m[name]:.2f}" for _, m in rows) + " |")
    db.dispose()


if __name__ == "__main__":
    main()
