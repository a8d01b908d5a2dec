"""template review trail and drift monitor

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('template_reviews',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('template_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['template_id'], ['templates.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('template_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_template_reviews_template_id'), ['template_id'], unique=False)

    op.create_table('drift_baselines',
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('template_ref', sa.String(length=160), nullable=False),
    sa.Column('model', sa.String(length=120), nullable=False),
    sa.Column('baseline_n', sa.Integer(), nullable=False),
    sa.Column('baseline_mean', sa.Float(), nullable=True),
    sa.Column('baseline_std', sa.Float(), nullable=True),
    sa.Column('monitored_n', sa.Integer(), nullable=False),
    sa.Column('statistic', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'template_ref', 'model')
    )
    op.create_table('drift_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('template_ref', sa.String(length=160), nullable=False),
    sa.Column('model', sa.String(length=120), nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('statistic', sa.Float(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('baseline_mean', sa.Float(), nullable=False),
    sa.Column('baseline_std', sa.Float(), nullable=False),
    sa.Column('recent_mean', sa.Float(), nullable=False),
    sa.Column('recent_n', sa.Integer(), nullable=False),
    sa.Column('last_attempt_id', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'template_ref', 'model', 'last_attempt_id')
    )
    with op.batch_alter_table('drift_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drift_events_template_ref'), ['template_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_drift_events_tenant'), ['tenant'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('drift_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drift_events_tenant'))
        batch_op.drop_index(batch_op.f('ix_drift_events_template_ref'))

    op.drop_table('drift_events')
    op.drop_table('drift_baselines')
    with op.batch_alter_table('template_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_template_reviews_template_id'))

    op.drop_table('template_reviews')
