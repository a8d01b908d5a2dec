"""indexes on what hot lookups filter on, so their cost stays flat as history accumulates

Revision ID: 0202
Revises: 0201
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0202"
down_revision: str | Sequence[str] | None = "0201"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

INDEXES = (
    ("ix_runs_tenant_created_at", "runs", ["tenant", "created_at"]),
    ("ix_audit_log_tenant_subject", "audit_log", ["tenant", "subject_id"]),
    ("ix_jobs_tenant_created_at", "jobs", ["tenant", "created_at"]),
    ("ix_jobs_run_id_tenant", "jobs", ["run_id", "tenant"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
