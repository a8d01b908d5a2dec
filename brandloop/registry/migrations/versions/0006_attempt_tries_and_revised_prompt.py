"""attempts record how many provider calls they took and the backend's revised prompt

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tries", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("revised_prompt", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_column("revised_prompt")
        batch_op.drop_column("tries")
