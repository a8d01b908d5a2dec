"""a thread's message records which shape fields it took from the turn before

A follow-up that leaves out its count, size or aspect ratio, or budget takes the previous
turn's. When that turn was then refused or cancelled, the follow-up is applied again to the
latest turn that stands (``api/jobs/turns.py``), and its shape must be that turn's too, except
what its own body named: ``inherited`` lists what it took (NULL on a message from before this
revision, whose shape is kept as it was stored; outside tester).

Revision ID: 1020
Revises: 1010
Create Date: 2027-03-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1020"
down_revision: str | Sequence[str] | None = "1010"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("thread_messages") as batch:
        batch.add_column(sa.Column("inherited", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("thread_messages") as batch:
        batch.drop_column("inherited")
