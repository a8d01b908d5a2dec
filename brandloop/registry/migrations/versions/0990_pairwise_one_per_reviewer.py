"""one pairwise judgement per reviewer and pair of images

A reviewer who posted the same pair twice (a double click, a changed mind, the form sent again)
was counted twice in the tally: one person's one comparison moved the win rates as two. Each
judgement now carries its pair's sha256s in order (``pair_low``, ``pair_high``; the displayed
``left``/``right`` stay as shown), unique per tenant, axis and reviewer: a later judgement of the
pair replaces the earlier. This revision keeps the latest of each reviewer's judgements of a
pair and drops the rest. The downgrade drops the columns and the index (the dropped duplicates
do not come back).

Revision ID: 0990
Revises: 0980
Create Date: 2027-03-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0990"
down_revision: str | Sequence[str] | None = "0980"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_judgements = sa.table(
    "pairwise_judgements",
    sa.column("id", sa.BigInteger),
    sa.column("tenant", sa.String),
    sa.column("axis", sa.String),
    sa.column("principal", sa.String),
    sa.column("left_sha256", sa.String),
    sa.column("right_sha256", sa.String),
    sa.column("pair_low", sa.String),
    sa.column("pair_high", sa.String),
)
_KEY = ("tenant", "axis", "principal", "pair_low", "pair_high")


def upgrade() -> None:
    with op.batch_alter_table("pairwise_judgements") as batch:
        batch.add_column(sa.Column("pair_low", sa.String(64), nullable=True))
        batch.add_column(sa.Column("pair_high", sa.String(64), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            _judgements.c.id,
            _judgements.c.tenant,
            _judgements.c.axis,
            _judgements.c.principal,
            _judgements.c.left_sha256,
            _judgements.c.right_sha256,
        ).order_by(_judgements.c.id)
    ).all()
    latest: dict[tuple[str, ...], int] = {}
    for row in rows:
        low, high = sorted((row.left_sha256, row.right_sha256))
        conn.execute(
            _judgements.update()
            .where(_judgements.c.id == row.id)
            .values(pair_low=low, pair_high=high)
        )
        latest[(row.tenant, row.axis, row.principal, low, high)] = row.id  # ids ascend
    kept = set(latest.values())
    dropped = [row.id for row in rows if row.id not in kept]
    for start in range(0, len(dropped), 500):
        conn.execute(_judgements.delete().where(_judgements.c.id.in_(dropped[start : start + 500])))
    with op.batch_alter_table("pairwise_judgements") as batch:
        batch.alter_column("pair_low", existing_type=sa.String(64), nullable=False)
        batch.alter_column("pair_high", existing_type=sa.String(64), nullable=False)
        batch.create_index("uq_pairwise_reviewer_pair", list(_KEY), unique=True)


def downgrade() -> None:
    with op.batch_alter_table("pairwise_judgements") as batch:
        batch.drop_index("uq_pairwise_reviewer_pair")
        batch.drop_column("pair_high")
        batch.drop_column("pair_low")
