"""principals: every API key belongs to a named principal; jobs record who asked for them

Keys made before this revision each become their own principal, named after the key id, so no
two existing keys are merged into one reviewer by the migration (review rules compare
principals from now on).

Revision ID: 0200
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0200"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "name"),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("principal", sa.String(length=120), nullable=True))
    op.execute(
        "INSERT INTO principals (tenant, name, created_at) "
        "SELECT tenant, id, created_at FROM api_keys"
    )
    op.execute("UPDATE api_keys SET principal = id")
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("principal", existing_type=sa.String(length=120), nullable=False)
        batch.create_foreign_key(
            "fk_api_keys_principal",
            "principals",
            ["tenant", "principal"],
            ["tenant", "name"],
        )
        batch.create_index("ix_api_keys_tenant_principal", ["tenant", "principal"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("requested_by", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("requested_by")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_tenant_principal")
        batch.drop_constraint("fk_api_keys_principal", type_="foreignkey")
        batch.drop_column("principal")
    op.drop_table("principals")
