"""mark the calls cancelled runs left in flight, and index them and the unfinished runs

The cost report and the ``brandloop_cost_usd`` metric add to the attempts each call of a run
not finished, or of a cancelled run, whose attempts are not recorded. They read every call of
every cancelled run and filtered them in Python, so each scrape of ``/metrics`` grew with the
history of cancellations. ``abandoned_at`` marks the calls that count (``spend.abandon_calls``
sets it as the run is cancelled), and two partial indexes hold just those calls and just the
runs not finished, so the readers read the calls that count and no others.

Calls of runs cancelled before this revision get their mark here: each call of a cancelled run
none of whose attempts is recorded is marked with the run's end (the Python filter it
replaces, run once).

Revision ID: 0940
Revises: 0930
Create Date: 2027-02-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0940"
down_revision: str | Sequence[str] | None = "0930"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

ABANDONED = "abandoned_at IS NOT NULL"
UNFINISHED = "finished_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("spend_reservations") as batch:
        batch.add_column(sa.Column("abandoned_at", sa.DateTime(timezone=True), nullable=True))
    _mark_abandoned_calls()
    op.create_index(
        "ix_spend_reservations_abandoned",
        "spend_reservations",
        ["tenant"],
        sqlite_where=sa.text(ABANDONED),
        postgresql_where=sa.text(ABANDONED),
    )
    op.create_index(
        "ix_runs_unfinished",
        "runs",
        ["tenant"],
        sqlite_where=sa.text(UNFINISHED),
        postgresql_where=sa.text(UNFINISHED),
    )


def _mark_abandoned_calls() -> None:
    conn = op.get_bind()
    calls = sa.table(
        "spend_reservations",
        sa.column("id"),
        sa.column("kind"),
        sa.column("run_id"),
        sa.column("attempt_ids", sa.JSON),
        sa.column("abandoned_at"),
    )
    runs = sa.table("runs", sa.column("id"), sa.column("status"), sa.column("finished_at"))
    attempts = sa.table("attempts", sa.column("id"), sa.column("run_id"))
    rows = conn.execute(
        sa.select(calls.c.id, calls.c.run_id, calls.c.attempt_ids, runs.c.finished_at)
        .join(runs, runs.c.id == calls.c.run_id)
        .where(
            calls.c.kind == "call",
            runs.c.status == "cancelled",
            runs.c.finished_at.is_not(None),
        )
    ).all()
    recorded = {
        (run_id, attempt_id)
        for run_id, attempt_id in conn.execute(
            sa.select(attempts.c.run_id, attempts.c.id).where(
                attempts.c.run_id.in_(
                    sa.select(runs.c.id).where(runs.c.status == "cancelled").scalar_subquery()
                )
            )
        )
    }
    for call_id, run_id, attempt_ids, finished_at in rows:
        if not any((run_id, str(a)) in recorded for a in attempt_ids or []):
            conn.execute(
                sa.update(calls).where(calls.c.id == call_id).values(abandoned_at=finished_at)
            )


def downgrade() -> None:
    op.drop_index("ix_runs_unfinished", table_name="runs")
    op.drop_index("ix_spend_reservations_abandoned", table_name="spend_reservations")
    with op.batch_alter_table("spend_reservations") as batch:
        batch.drop_column("abandoned_at")
