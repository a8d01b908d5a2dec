"""deleting an artifact keeps its row, and its receipt

``DELETE /v1/artifacts/{sha256}`` deleted the tenant's row, and with it the receipt of an
accepted image: the run's ``/receipts`` came back empty, ``runs reproduce`` had nothing to
re-run and ``brandloop verify`` said a downloaded copy's run was not in the registry. The
bytes go; the row stays, with ``deleted_at`` set.

Revision ID: 0960
Revises: 0950
Create Date: 2027-02-17
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0960"
down_revision: str | Sequence[str] | None = "0950"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_column("deleted_at")
