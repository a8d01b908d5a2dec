"""Migration 0930 on data made before it, on SQLite and PostgreSQL: a run an earlier release
left ``running`` after claiming it for a verdict (its process killed before it finished the
run) gets a claim that has lapsed already, naming its latest verdict, so the next verdict or a
service's sweep finishes it; runs waiting for review or finished get none."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from sqlalchemy import select

from brandloop.agent import review_claims
from brandloop.domain import utcnow
from brandloop.registry.db import Database, alembic_config
from brandloop.registry.models_agent import ReviewClaimRow


def upgrade(url: str, revision: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def test_a_run_left_running_by_a_killed_verdict_gets_a_lapsed_claim(empty_url: str) -> None:
    upgrade(empty_url, "0920")
    engine = sa.create_engine(empty_url)
    with engine.begin() as conn:
        for run, status in (
            ("run_stuck", "running"),
            ("run_waits", "awaiting_review"),
            ("run_done", "succeeded"),
            ("run_busy", "running"),  # running, never reviewed: a generation in flight
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO runs (id, tenant, brand_name, brief, request, status, reason, "
                    "template_ref, cost_usd, attempt_count, accepted_count, created_at) VALUES "
                    "(:id, 'acme', 'b', 'brief', '{}', :status, '', 't', 0, 1, 1, "
                    "'2026-11-20 10:00:00')"
                ),
                {"id": run, "status": status},
            )
        for run, decision, actor, at in (
            ("run_stuck", "reject", "lee", "2026-11-20 10:05:00"),  # failed to finish: waited
            ("run_stuck", "approve", "ana", "2026-11-20 10:09:00"),  # then killed mid-finish
            ("run_waits", "approve", "lee", "2026-11-20 10:06:00"),
            ("run_done", "approve", "lee", "2026-11-20 10:07:00"),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO review_decisions (run_id, tenant, decision, note, actor, "
                    "created_at) VALUES (:run, 'acme', :decision, '', :actor, :at)"
                ),
                {"run": run, "decision": decision, "actor": actor, "at": at},
            )
    engine.dispose()
    upgrade(empty_url, "heads")
    db = Database(empty_url)
    try:
        with db.session() as session:
            claims = list(session.scalars(select(ReviewClaimRow)))
            assert [(c.run_id, c.tenant, c.owner != review_claims.RELEASED) for c in claims] == [
                ("run_stuck", "acme", True)
            ]
            (claim,) = claims
            latest = session.execute(
                sa.text("SELECT decision, actor FROM review_decisions WHERE id = :id"),
                {"id": claim.decision_id},
            ).one()
            assert tuple(latest) == ("approve", "ana")
            assert claim.expires_at < utcnow() and claim.fence == 1
        assert review_claims.lapsed(db) == [("acme", "run_stuck")]
    finally:
        db.dispose()
