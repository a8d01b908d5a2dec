"""outcome counts per quality setting: the planner's bandit arms are (model, quality) pairs

The table is rebuilt with ``quality`` in its primary key (a primary key cannot be widened in
place on SQLite). Counts recorded before keep ``quality = ''``: the model's default setting,
which is what the planner asked for before it chose quality settings.

Revision ID: 0800
Revises: 0300
Create Date: 2026-12-03
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0800"
down_revision: str | Sequence[str] | None = "0300"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

COLUMNS = "brand_id, template_ref, model, outcome, attempts, latency_ms_total"


def _table(name: str, *, with_quality: bool) -> None:
    columns: list[sa.Column[Any]] = [
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("template_ref", sa.String(length=160), nullable=False),
        sa.Column("model", sa.String(length=120), nullable=False),
    ]
    key = ["brand_id", "template_ref", "model"]
    if with_quality:
        columns.append(sa.Column("quality", sa.String(length=16), nullable=False))
        key.append("quality")
    columns += [
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms_total", sa.Float(), nullable=False),
    ]
    op.create_table(name, *columns, sa.PrimaryKeyConstraint(*key, "outcome", name=f"{name}_pkey"))


def upgrade() -> None:
    _table("outcome_counts_by_quality", with_quality=True)
    op.execute(
        f"INSERT INTO outcome_counts_by_quality ({COLUMNS}, quality) "
        f"SELECT {COLUMNS}, '' FROM outcome_counts"
    )
    op.drop_table("outcome_counts")
    op.rename_table("outcome_counts_by_quality", "outcome_counts")


def downgrade() -> None:
    _table("outcome_counts_by_model", with_quality=False)
    op.execute(
        f"INSERT INTO outcome_counts_by_model ({COLUMNS}) "
        "SELECT brand_id, template_ref, model, outcome, SUM(attempts), SUM(latency_ms_total) "
        "FROM outcome_counts GROUP BY brand_id, template_ref, model, outcome"
    )
    op.drop_table("outcome_counts")
    op.rename_table("outcome_counts_by_model", "outcome_counts")
