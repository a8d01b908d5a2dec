"""Registry lookups and the planner's outcome statistics as history accumulates.

For each size the registry gets that many finished runs (4 attempts, an artifact, a job and
an audit entry each) for the measured tenant's brand, and as many again for another tenant,
inserted in bulk. Then each hot-path query is timed (median of ``--repeat``) through the real
data-access functions, and its plan is printed (SQLite ``EXPLAIN QUERY PLAN``; PostgreSQL
``EXPLAIN``), so a scan shows. The baseline is the smallest size: a flat cost stays near it.

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

from sqlalchemy import insert, text
from sqlalchemy.orm import Session


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


OUTCOME_COUNTS = (
    "INSERT INTO outcome_counts (brand_id, template_ref, model, outcome, attempts, "
    "latency_ms_total) SELECT r.brand_id, a.template_ref, a.model, a.outcome, COUNT(*), "
    "SUM(a.latency_ms) FROM attempts a JOIN runs r ON r.id = a.run_id "
    "WHERE r.brand_id IS NOT NULL GROUP BY r.brand_id, a.template_ref, a.model, a.outcome"
)


def _plan(session: Session, statement: Any) -> str:
    compiled = statement.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
    dialect = session.get_bind().dialect.name
    prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
    rows = session.execute(text(prefix + str(compiled))).all()
    return " | ".join(str(r[-1]) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from sqlalchemy import select

    from brandloop.agent.bandit import arm_stats
    from brandloop.api.jobs import store
    from brandloop.registry import crud
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
            "spent_today": lambda s: store.spent_today(s, tenant="acme_co"),
            "attempt_by_key": lambda s, r=last: crud.attempt_by_key(
                s, idempotency_key=f"idem_{r}_0"
            ),
            "audit_of_run": lambda s, r=last: crud.list_audit(s, tenant="acme_co", subject_id=r),
            "arm_stats": lambda s: arm_stats(s, brand_id="brand_acme_co", template_ref="t@1"),
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
