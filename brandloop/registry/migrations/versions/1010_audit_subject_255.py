"""audit_log.subject_id holds 255 characters

A label move's subject is ``name:label``: a template name may be 120 characters and a label
64, so 185, past the column's 160. PostgreSQL refused the write (a 500, ``value too long for
type character varying(160)``; outside tester) while SQLite, which does not enforce a length,
kept it. On SQLite the table is rebuilt to declare the width (as alembic's batch mode does),
and its append-only triggers, which go with the old table, are made again.

Revision ID: 1010
Revises: 1000
Create Date: 2027-03-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1010"
down_revision: str | Sequence[str] | None = "1000"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def _width(width: int, before: int) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.alter_column(
            "audit_log",
            "subject_id",
            type_=sa.String(length=width),
            existing_type=sa.String(length=before),
            existing_nullable=False,
        )
        return
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS audit_log_no_{verb}")
    with op.batch_alter_table("audit_log", recreate="always") as batch:
        batch.alter_column(
            "subject_id",
            type_=sa.String(length=width),
            existing_type=sa.String(length=before),
            existing_nullable=False,
        )
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )


def upgrade() -> None:
    _width(255, 160)


def downgrade() -> None:
    _width(160, 255)
