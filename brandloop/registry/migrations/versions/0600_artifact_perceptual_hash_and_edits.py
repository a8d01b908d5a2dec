"""artifacts keep a perceptual hash (to match a file whose Content Credentials were stripped)
and the edits brandloop made to a model's output (crop, resize, transcode) for the manifest

Revision ID: 0600
Revises: 0400
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0600"
down_revision: str | Sequence[str] | None = "0400"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phash", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("edits", sa.JSON(), nullable=True))
        batch_op.create_index("ix_artifacts_tenant_phash", ["tenant", "phash"])


def downgrade() -> None:
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.drop_index("ix_artifacts_tenant_phash")
        batch_op.drop_column("edits")
        batch_op.drop_column("phash")
