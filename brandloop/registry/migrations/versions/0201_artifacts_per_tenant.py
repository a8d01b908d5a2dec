"""artifacts are owned per (tenant, sha256): identical bytes made by two tenants are both's

The table is rebuilt with the new primary key. A tenant whose attempts produced bytes that
another tenant had recorded first (and so got no row, and a 404 for its own image) gets its
own row now, pointing at the same file.

Revision ID: 0201
Revises: 0200
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0201"
down_revision: str | Sequence[str] | None = "0200"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

COLUMNS = "tenant, sha256, path, media_type, width, height, size_bytes, run_id, attempt_id, "
COLUMNS += "receipt, created_at"


def _table(name: str, primary_key: tuple[str, ...]) -> None:
    op.create_table(
        name,
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("attempt_id", sa.String(length=64), nullable=True),
        sa.Column("receipt", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(*primary_key, name=f"pk_{name}"),
    )


def upgrade() -> None:
    _table("artifacts_owned", ("tenant", "sha256"))
    op.execute(f"INSERT INTO artifacts_owned ({COLUMNS}) SELECT {COLUMNS} FROM artifacts")
    # the tenants that made the same bytes after another tenant did
    op.execute(
        f"INSERT INTO artifacts_owned ({COLUMNS}) "
        "SELECT made.tenant, made.sha256, a.path, a.media_type, a.width, a.height, "
        "a.size_bytes, made.run_id, made.attempt_id, NULL, made.created_at "
        "FROM (SELECT r.tenant AS tenant, t.artifact_sha256 AS sha256, MIN(t.run_id) AS run_id, "
        "MIN(t.id) AS attempt_id, MIN(t.created_at) AS created_at "
        "FROM attempts t JOIN runs r ON r.id = t.run_id "
        "WHERE t.artifact_sha256 IS NOT NULL GROUP BY r.tenant, t.artifact_sha256) made "
        "JOIN artifacts a ON a.sha256 = made.sha256 "
        "WHERE NOT EXISTS (SELECT 1 FROM artifacts_owned o "
        "WHERE o.tenant = made.tenant AND o.sha256 = made.sha256)"
    )
    op.drop_table("artifacts")
    op.rename_table("artifacts_owned", "artifacts")
    op.create_index("ix_artifacts_run_id", "artifacts", ["run_id"])
    op.create_index("ix_artifacts_sha256", "artifacts", ["sha256"])


def downgrade() -> None:
    """Back to one row per sha256: the first tenant's row of each is kept."""
    _table("artifacts_by_sha", ("sha256",))
    op.execute(
        f"INSERT INTO artifacts_by_sha ({COLUMNS}) SELECT {COLUMNS} FROM artifacts a "
        "WHERE NOT EXISTS (SELECT 1 FROM artifacts b WHERE b.sha256 = a.sha256 "
        "AND (b.created_at < a.created_at OR (b.created_at = a.created_at AND b.tenant < a.tenant)))"
    )
    op.drop_table("artifacts")
    op.rename_table("artifacts_by_sha", "artifacts")
    op.create_index("ix_artifacts_run_id", "artifacts", ["run_id"])
    op.create_index("ix_artifacts_tenant", "artifacts", ["tenant"])
