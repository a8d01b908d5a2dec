"""run leases: the process driving a run holds a lease on it, so a resume of a live run is refused

``brandloop runs resume`` of a run another live process was still running (the CLI's
``generate``, say) drove it a second time: its trace told ``done`` and ``remembered`` twice and
brand memory was written twice. ``run_leases`` holds, per run, which process drives it
(host, pid, start time) and until when (``agent/run_leases.py``). Runs left ``running`` by
older code get no row: nothing holds them, so they resume as before.

Revision ID: 0970
Revises: 0960
Create Date: 2027-02-17
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0970"
down_revision: str | Sequence[str] | None = "0960"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_leases",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started", sa.String(length=64), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )


def downgrade() -> None:
    op.drop_table("run_leases")
