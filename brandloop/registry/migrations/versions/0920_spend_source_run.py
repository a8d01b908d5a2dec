"""name the run a reproduction's provider calls reproduce, on their spend reservations

A reproduction (``brandloop runs reproduce``, the studio's reproduce) pays its provider calls
through the spend ledger under a spend id of its own (``rep_...``), not a run: the cost report,
which summed runs, left them out while the daily quota counted them. ``source_run_id`` names
the reproduced run, so the report counts each such call under that run's brand.
Reservations made before this revision keep ``NULL`` (the report counts them without a brand).

Revision ID: 0920
Revises: 0910
Create Date: 2027-01-20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0920"
down_revision: str | Sequence[str] | None = "0910"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("spend_reservations") as batch:
        batch.add_column(sa.Column("source_run_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("spend_reservations") as batch:
        batch.drop_column("source_run_id")
