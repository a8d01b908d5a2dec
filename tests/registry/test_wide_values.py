"""Every column holding a seed, a size, a byte count, a counter or money takes its whole range on
both databases: what SQLite stores, PostgreSQL stores too (issue 18, part 0)."""

from __future__ import annotations

import sqlalchemy as sa

from brandloop.domain import MAX_SEED, Attempt, BrandKit, Candidate, PaletteColour, utcnow
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.registry.models import ArtifactRow, AttemptRow, RunEventRow, RunRow
from brandloop.registry.models_agent import BudgetRow, CacheEntryRow

BIG = 2**40 + 7  # past 32 bits, as a counter can get
MONEY = 987_654_321.123456789012  # a large amount, to the cent and well beyond


def _start_event_ids_past_32_bits(db: Database) -> None:
    """Move ``run_events.id`` past 2^31, where a 32-bit serial would stop."""
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(f"ALTER SEQUENCE run_events_id_seq RESTART WITH {2**31 + 5}"))
        else:  # SQLite hands out max(rowid) + 1: one row far out, of a run of its own
            conn.execute(
                sa.text(
                    "INSERT INTO runs (id, tenant, brand_name, brief, request, status, reason,"
                    " template_ref, cost_usd, attempt_count, accepted_count, created_at)"
                    " VALUES ('r0', 't', '', 'b', '{}', 'running', '', '', 0, 0, 0, :at)"
                ),
                {"at": utcnow()},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO run_events (id, run_id, seq, node, kind, payload, at)"
                    " VALUES (:id, 'r0', 1, 'plan', 'decision', '{}', :at)"
                ),
                {"id": 2**31 + 4, "at": utcnow()},
            )


def test_wide_values_round_trip(db: Database) -> None:
    cand = Candidate(
        id="c1",
        template="t@1",
        prompt="p",
        model="procedural/draft",
        seed=MAX_SEED,
        width=2**31 + 1,
        height=2**31 + 2,
    )
    with db.session() as session:
        brand = crud.upsert_brand(
            session, tenant="t", kit=BrandKit(name="Wide", palette=[PaletteColour(hex="#112233")])
        )
        crud.create_run(
            session,
            run_id="r1",
            tenant="t",
            brand_id=brand.id,
            brand_name="Wide",
            brief="b",
            request={},
        )
        crud.upsert_attempt(
            session,
            run_id="r1",
            attempt=Attempt(
                id="a1",
                candidate=cand,
                outcome="accepted",
                idempotency_key="k1",
                seed_returned=MAX_SEED,
                tries=2**31 + 3,
                cost_usd=MONEY,
            ),
        )
        crud.finish_run(
            session,
            run_id="r1",
            status="succeeded",
            reason="",
            template_ref="t@1",
            cost_usd=MONEY,
            attempt_count=BIG,
            accepted_count=BIG,
            result={},
        )
        session.add(
            ArtifactRow(
                sha256="f" * 64,
                tenant="t",
                path="x.png",
                width=2**31 + 1,
                height=2**31 + 2,
                size_bytes=5 * 2**30,  # a 5 GiB file's row: no file behind it here
                run_id="r1",
                attempt_id="a1",
            )
        )
        session.add(
            CacheEntryRow(
                key="k" * 64,
                tenant="t",
                provider="p",
                model="m",
                model_version="1",
                template_ref="t@1",
                artifact_sha256="f" * 64,
                seed_returned=MAX_SEED,
                cost_usd=MONEY,
                hits=BIG,
            )
        )
        session.add(BudgetRow(tenant="t", scope="tenant", scope_id="t", limit_usd=MONEY))
    _start_event_ids_past_32_bits(db)
    with db.session() as session:
        events = [
            crud.add_event(session, run_id="r1", node="plan", kind="decision", payload={})
            for _ in range(2)
        ]
        assert all(event.id > 2**31 for event in events)

    with db.session() as session:
        attempt = session.get(AttemptRow, "a1")
        assert attempt is not None
        assert (attempt.seed_requested, attempt.seed_returned) == (MAX_SEED, MAX_SEED)
        assert (attempt.width, attempt.height, attempt.tries) == (2**31 + 1, 2**31 + 2, 2**31 + 3)
        assert attempt.cost_usd == MONEY and isinstance(attempt.cost_usd, float)
        run = session.get(RunRow, "r1")
        assert run is not None
        assert (run.attempt_count, run.accepted_count, run.cost_usd) == (BIG, BIG, MONEY)
        artifact = session.get(ArtifactRow, ("t", "f" * 64))
        assert artifact is not None and artifact.size_bytes == 5 * 2**30
        entry = session.get(CacheEntryRow, "k" * 64)
        assert entry is not None and (entry.hits, entry.seed_returned) == (BIG, MAX_SEED)
        budget = session.scalar(sa.select(BudgetRow))
        assert budget is not None and budget.limit_usd == MONEY
        seqs = session.scalars(sa.select(RunEventRow.seq).where(RunEventRow.run_id == "r1"))
        assert list(seqs) == [1, 2]


def test_money_sums_read_back_as_floats(db: Database) -> None:
    """Aggregates over money come back as floats on both databases, never as ``Decimal``."""
    with db.session() as session:
        for index, cost in enumerate((0.01, 0.02, 0.02)):
            crud.create_run(
                session,
                run_id=f"r{index}",
                tenant="t",
                brand_id=None,
                brand_name="",
                brief="b",
                request={},
            )
            crud.finish_run(
                session,
                run_id=f"r{index}",
                status="succeeded",
                reason="",
                template_ref="",
                cost_usd=cost,
                attempt_count=1,
                accepted_count=1,
                result={},
            )
    with db.session() as session:
        total = session.scalar(sa.select(sa.func.sum(RunRow.cost_usd)))
    assert isinstance(total, float) and abs(total - 0.05) < 1e-12
