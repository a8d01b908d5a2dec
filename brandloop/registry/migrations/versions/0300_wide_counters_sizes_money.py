"""counters, sizes, byte counts and ids are BIGINT, money is NUMERIC on PostgreSQL

SQLite keeps any integer in 64 bits and any real as a double whatever the declared type, so a
value SQLite took must fit PostgreSQL too. Nothing changes on SQLite (brandloop.registry.types).
Serial ids also get a 64-bit sequence: widening the column alone leaves the sequence at 2^31.

Revision ID: 0300
Revises: 0101
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0300"
down_revision: str | Sequence[str] | None = "0101"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

COUNTS: dict[str, tuple[str, ...]] = {
    "artifacts": ("width", "height", "size_bytes"),
    "template_versions": ("version",),
    "runs": ("attempt_count", "accepted_count"),
    "run_events": ("seq",),
    "attempts": ("iteration", "width", "height", "tries"),
    "template_reviews": ("version",),
    "drift_baselines": ("baseline_n", "monitored_n"),
    "drift_events": ("recent_n",),
    "cache_entries": ("hits",),
    "job_leases": ("takeovers",),
    "thread_messages": ("seq",),
}
SERIAL_IDS = (
    "audit_log",
    "run_events",
    "template_reviews",
    "drift_events",
    "budgets",
    "review_decisions",
    "repair_outcomes",
    "image_ratings",
    "pairwise_judgements",
)
MONEY: dict[str, tuple[str, ...]] = {
    "models": ("price_per_image_usd",),
    "runs": ("cost_usd",),
    "attempts": ("cost_usd",),
    "cache_entries": ("cost_usd",),
    "budgets": ("limit_usd",),
    "campaigns": ("budget_usd",),
    "jobs": ("cost_usd",),
    "spend_reservations": ("amount_usd", "charged_usd"),
}


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgres():
        return
    for table, columns in COUNTS.items():
        for column in columns:
            op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer())
    for table in SERIAL_IDS:
        op.alter_column(table, "id", type_=sa.BigInteger(), existing_type=sa.Integer())
        op.execute(f"ALTER SEQUENCE {table}_id_seq AS BIGINT")
    for table, columns in MONEY.items():
        for column in columns:
            op.alter_column(
                table,
                column,
                type_=sa.Numeric(24, 12, asdecimal=False),
                existing_type=sa.Float(),
                postgresql_using=f"{column}::numeric(24, 12)",
            )


def downgrade() -> None:
    if not _postgres():
        return
    for table, columns in MONEY.items():
        for column in columns:
            op.alter_column(table, column, type_=sa.Float(), existing_type=sa.Numeric(24, 12))
    for table in SERIAL_IDS:
        op.execute(f"ALTER SEQUENCE {table}_id_seq AS INTEGER")
        op.alter_column(table, "id", type_=sa.Integer(), existing_type=sa.BigInteger())
    for table, columns in COUNTS.items():
        for column in columns:
            op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger())
