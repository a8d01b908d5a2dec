"""Migration 0940 on data made before it, on SQLite and PostgreSQL: each call of a cancelled
run none of whose attempts is recorded (left in flight by a process that died, reconciled or
not, or kept ``held`` by a release before ``abandon_calls``) is marked ``abandoned_at``, and
no other call; the run costs and the cost total (which now read the marked calls and the calls
of runs not finished, through their indexes) are what the Python filter made of them before."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import select

from brandloop.registry import spend
from brandloop.registry.costs import total_usd
from brandloop.registry.db import Database, alembic_config
from brandloop.registry.models_money import SpendReservationRow

RUNS = {
    # run: status, finished
    "run_cancelled": ("cancelled", True),
    "run_running": ("running", False),
    "run_done": ("succeeded", True),
}
CALLS = {
    # call: run, state, amount, charged, its attempt recorded
    "res_billed": ("run_cancelled", "settled", 0.04, 0.01, True),  # counts through its attempt
    "res_lost": ("run_cancelled", "unknown", 0.04, None, False),  # abandoned, unreconciled
    "res_invoiced": ("run_cancelled", "settled", 0.04, 0.03, False),  # abandoned, reconciled
    "res_legacy": ("run_cancelled", "held", 0.05, None, False),  # before abandon_calls
    "res_free": ("run_cancelled", "released", 0.04, 0.0, False),  # reconciled to $0
    "res_in_flight": ("run_running", "held", 0.04, None, False),
    "res_done": ("run_done", "settled", 0.04, 0.02, True),
}


def upgrade(url: str, revision: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def test_calls_cancelled_runs_left_unrecorded_are_marked_and_count_as_before(
    empty_url: str,
) -> None:
    upgrade(empty_url, "0930")
    engine = sa.create_engine(empty_url)
    with engine.begin() as conn:
        for run, (status, finished) in RUNS.items():
            conn.execute(
                sa.text(
                    "INSERT INTO runs (id, tenant, brand_name, brief, request, status, reason, "
                    "template_ref, cost_usd, attempt_count, accepted_count, created_at, "
                    "finished_at) VALUES (:id, 'acme', 'Acme', 'brief', '{}', :status, '', 't', "
                    "0, 1, 0, '2026-11-20 10:00:00', :finished)"
                ),
                {
                    "id": run,
                    "status": status,
                    "finished": "2026-11-20 11:00:00" if finished else None,
                },
            )
        for call, (run, state, amount, charged, recorded) in CALLS.items():
            attempt = f"att_{call}"
            conn.execute(
                sa.text(
                    "INSERT INTO spend_reservations (id, kind, tenant, run_id, call_key, provider, "
                    "model, amount_usd, charged_usd, state, attempt_ids, note, created_at) VALUES "
                    "(:id, 'call', 'acme', :run, :id, 'openai', 'openai/gpt-image-1', :amount, "
                    ":charged, :state, :ids, '', '2026-11-20 10:01:00')"
                ),
                {
                    "id": call,
                    "run": run,
                    "amount": amount,
                    "charged": charged,
                    "state": state,
                    "ids": json.dumps([attempt]),
                },
            )
            if recorded:
                conn.execute(
                    sa.text(
                        "INSERT INTO attempts (id, run_id, iteration, model, template_ref, prompt, "
                        "negative_prompt, seed_requested, width, height, params, outcome, "
                        "idempotency_key, tries, cost_usd, latency_ms, cache_hit, created_at) "
                        "VALUES (:id, :run, 0, 'openai/gpt-image-1', 't', 'p', '', 1, 64, 64, "
                        "'{}', 'rejected', :id, 1, :cost, 1.0, false, '2026-11-20 10:02:00')"
                    ),
                    {"id": attempt, "run": run, "cost": charged},
                )
    engine.dispose()

    upgrade(empty_url, "heads")
    db = Database(empty_url)
    try:
        with db.session() as session:
            marked = sorted(
                session.scalars(
                    select(SpendReservationRow.id).where(
                        SpendReservationRow.abandoned_at.is_not(None)
                    )
                )
            )
            assert marked == ["res_free", "res_invoiced", "res_legacy", "res_lost"]
            # the attempts (0.01 + 0.02), the lost call's and the legacy call's reservations,
            # the invoiced charge, and the call in flight at its reservation
            cancelled = spend.run_cost(session, run_id="run_cancelled")
            assert cancelled == pytest.approx(0.01 + 0.04 + 0.03 + 0.05)
            assert spend.run_cost(session, run_id="run_running") == pytest.approx(0.04)
            assert total_usd(session) == pytest.approx(cancelled + 0.04 + 0.02)
    finally:
        db.dispose()
