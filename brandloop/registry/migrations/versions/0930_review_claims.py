"""review claims: a verdict's claim on its run is a lease a dead process's successor takes over

A verdict moved its run from ``awaiting_review`` to ``running`` and then finished it; a
process killed in between left the run ``running`` for good (every later verdict a 409, and
nothing resumed it). ``review_claims`` holds, per run, the verdict being applied, who applies
it and until when (``agent/review_claims.py``).

Runs the old code left that way (``running`` with a recorded verdict) get a claim that
has lapsed already, naming their latest verdict: the next verdict on the run or a worker pool's
sweep finishes them with it. Stop the previous release's processes before migrating (as for
every migration): one still applying a verdict would otherwise finish it beside its successor.

Revision ID: 0930
Revises: 0920
Create Date: 2027-01-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0930"
down_revision: str | Sequence[str] | None = "0920"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

COUNT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "review_claims",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("decision_id", COUNT, nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("takeovers", COUNT, nullable=False),
        sa.Column("fence", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index(op.f("ix_review_claims_expires_at"), "review_claims", ["expires_at"])
    op.execute(
        """
        INSERT INTO review_claims (run_id, tenant, decision_id, owner, claimed_at, expires_at,
            takeovers, fence)
        SELECT runs.id, runs.tenant, latest.id, 'left by a process that stopped (migration 0930)',
            latest.created_at, latest.created_at, 0, 1
        FROM runs
        JOIN review_decisions AS latest
            ON latest.run_id = runs.id AND latest.tenant = runs.tenant
        WHERE runs.status = 'running'
            AND latest.id = (SELECT MAX(d.id) FROM review_decisions AS d
                             WHERE d.run_id = runs.id AND d.tenant = runs.tenant)
        """
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_review_claims_expires_at"), table_name="review_claims")
    op.drop_table("review_claims")
