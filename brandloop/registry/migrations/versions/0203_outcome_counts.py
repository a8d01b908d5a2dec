"""outcome counts: the planner's per-brand statistics kept as attempts are recorded

Filled from the attempts recorded so far; from now on ``crud.upsert_attempt`` keeps them.

Revision ID: 0203
Revises: 0202
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0203"
down_revision: str | Sequence[str] | None = "0202"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outcome_counts",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("template_ref", sa.String(length=160), nullable=False),
        sa.Column("model", sa.String(length=120), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms_total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("brand_id", "template_ref", "model", "outcome"),
    )
    op.execute(
        "INSERT INTO outcome_counts "
        "(brand_id, template_ref, model, outcome, attempts, latency_ms_total) "
        "SELECT r.brand_id, a.template_ref, a.model, a.outcome, COUNT(*), SUM(a.latency_ms) "
        "FROM attempts a JOIN runs r ON r.id = a.run_id WHERE r.brand_id IS NOT NULL "
        "GROUP BY r.brand_id, a.template_ref, a.model, a.outcome"
    )


def downgrade() -> None:
    op.drop_table("outcome_counts")
