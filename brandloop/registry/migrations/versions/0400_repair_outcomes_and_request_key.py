"""repair outcomes (did a repair fix its signal) and runs.request_key (identical requests)

Revision ID: 0400
Revises: 0700
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0400"
down_revision: str | Sequence[str] | None = "0700"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "repair_outcomes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=True),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("signal", sa.String(length=48), nullable=False),
        sa.Column("model", sa.String(length=120), nullable=False),
        sa.Column("fixed", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "round", "action", "signal"),
    )
    op.create_index("ix_repair_outcomes_run_id", "repair_outcomes", ["run_id"])
    op.create_index("ix_repair_outcomes_tenant", "repair_outcomes", ["tenant"])
    op.create_index("ix_repair_outcomes_brand_id", "repair_outcomes", ["brand_id"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("request_key", sa.String(length=64), nullable=True))
        batch.create_index("ix_runs_request_key", ["request_key"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_request_key")
        batch.drop_column("request_key")
    op.drop_table("repair_outcomes")
