"""spend reservations: the ledger every provider call reserves in before it is made; attempts
record their billing; job leases carry a fencing token

Existing attempts that cost something become settled call reservations, so tenant and campaign
budgets keep counting what was spent before this migration.

Revision ID: 0100
Revises: 0600
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0100"
down_revision: str | Sequence[str] | None = "0600"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spend_reservations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("campaign_id", sa.String(length=120), nullable=True),
        sa.Column("hold_id", sa.String(length=64), nullable=True),
        sa.Column("call_key", sa.String(length=128), nullable=True),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=120), nullable=False),
        sa.Column("amount_usd", sa.Float(), nullable=False),
        sa.Column("charged_usd", sa.Float(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("billing", sa.String(length=16), nullable=True),
        sa.Column("fence", sa.BigInteger(), nullable=True),
        sa.Column("attempt_ids", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_key"),
    )
    op.create_index(
        "ix_spend_reservations_tenant_created",
        "spend_reservations",
        ["tenant", "created_at"],
    )
    op.create_index(
        "ix_spend_reservations_tenant_kind_state",
        "spend_reservations",
        ["tenant", "kind", "state"],
    )
    op.create_index(op.f("ix_spend_reservations_run_id"), "spend_reservations", ["run_id"])
    op.create_index(
        op.f("ix_spend_reservations_campaign_id"), "spend_reservations", ["campaign_id"]
    )
    op.create_index(op.f("ix_spend_reservations_hold_id"), "spend_reservations", ["hold_id"])
    op.create_table(
        "spend_locks",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant"),
    )
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("billing", sa.String(length=16), nullable=True))
    with op.batch_alter_table("job_leases") as batch:
        batch.add_column(sa.Column("fence", sa.BigInteger(), server_default="0", nullable=False))
    op.execute(
        """
        INSERT INTO spend_reservations (id, kind, tenant, run_id, campaign_id, provider, model,
            amount_usd, charged_usd, state, billing, attempt_ids, note, created_at, settled_at)
        SELECT 'att:' || attempts.id, 'call', runs.tenant, attempts.run_id, runs.campaign_id,
            '', attempts.model, attempts.cost_usd, attempts.cost_usd, 'settled', 'billed', '[]',
            'recorded before reservations existed', attempts.created_at, attempts.created_at
        FROM attempts JOIN runs ON runs.id = attempts.run_id
        WHERE attempts.cost_usd > 0
        """
    )
    op.execute("UPDATE attempts SET billing = 'billed' WHERE cost_usd > 0 AND cache_hit = false")


def downgrade() -> None:
    with op.batch_alter_table("job_leases") as batch:
        batch.drop_column("fence")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("billing")
    op.drop_table("spend_locks")
    op.drop_index(op.f("ix_spend_reservations_hold_id"), table_name="spend_reservations")
    op.drop_index(op.f("ix_spend_reservations_campaign_id"), table_name="spend_reservations")
    op.drop_index(op.f("ix_spend_reservations_run_id"), table_name="spend_reservations")
    op.drop_index("ix_spend_reservations_tenant_kind_state", table_name="spend_reservations")
    op.drop_index("ix_spend_reservations_tenant_created", table_name="spend_reservations")
    op.drop_table("spend_reservations")
