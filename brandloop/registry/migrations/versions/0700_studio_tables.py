"""studio sessions, sign-in links and review records; the edit a thread message made

Revision ID: 0700
Revises: 0203
Create Date: 2026-12-02
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0700'
down_revision: str | None = '0203'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('thread_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('edit', sa.JSON(), nullable=True))
    op.create_table('image_ratings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('principal', sa.String(length=120), nullable=False),
    sa.Column('on_brand', sa.Integer(), nullable=False),
    sa.Column('usable', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'sha256', 'principal')
    )
    with op.batch_alter_table('image_ratings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_ratings_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_image_ratings_tenant'), ['tenant'], unique=False)

    op.create_table('pairwise_judgements',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('brand', sa.String(length=80), nullable=False),
    sa.Column('axis', sa.String(length=16), nullable=False),
    sa.Column('left_sha256', sa.String(length=64), nullable=False),
    sa.Column('right_sha256', sa.String(length=64), nullable=False),
    sa.Column('left_ref', sa.String(length=160), nullable=False),
    sa.Column('right_ref', sa.String(length=160), nullable=False),
    sa.Column('winner', sa.String(length=8), nullable=False),
    sa.Column('principal', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pairwise_judgements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pairwise_judgements_tenant'), ['tenant'], unique=False)

    op.create_table('review_assignments',
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('assignee', sa.String(length=120), nullable=False),
    sa.Column('assigned_by', sa.String(length=120), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('run_id')
    )
    with op.batch_alter_table('review_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_assignments_tenant'), ['tenant'], unique=False)

    op.create_table('studio_links',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('principal', sa.String(length=120), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('studio_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_studio_links_tenant'), ['tenant'], unique=False)

    op.create_table('studio_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('principal', sa.String(length=120), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('csrf', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('studio_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_studio_sessions_tenant'), ['tenant'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('studio_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_studio_sessions_tenant'))

    op.drop_table('studio_sessions')
    with op.batch_alter_table('studio_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_studio_links_tenant'))

    op.drop_table('studio_links')
    with op.batch_alter_table('review_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_assignments_tenant'))

    op.drop_table('review_assignments')
    with op.batch_alter_table('pairwise_judgements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pairwise_judgements_tenant'))

    op.drop_table('pairwise_judgements')
    with op.batch_alter_table('image_ratings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_image_ratings_tenant'))
        batch_op.drop_index(batch_op.f('ix_image_ratings_run_id'))

    op.drop_table('image_ratings')
    with op.batch_alter_table('thread_messages', schema=None) as batch_op:
        batch_op.drop_column('edit')
