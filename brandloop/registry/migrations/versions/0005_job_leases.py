"""scale-out: job leases

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-25
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0001'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('job_leases',
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('owner', sa.String(length=128), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('takeovers', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('job_id')
    )
    op.create_index(op.f('ix_job_leases_expires_at'), 'job_leases', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_job_leases_expires_at'), table_name='job_leases')
    op.drop_table('job_leases')
