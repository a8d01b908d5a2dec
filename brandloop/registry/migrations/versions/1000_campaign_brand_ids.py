"""campaigns record their brand's id, not only its name

A campaign kept its brand by name: once the brand was renamed, its consistency figure was
measured against no brand (null over four images) or, once a new brand took the old name,
against that brand's palette; its assets still queued ran under the old name. ``brand_id`` is
the brand, whatever it is called later (threads got theirs in 0950).

Campaigns from before this revision get the id of the brand that had the campaign's name, in
its tenant, when it was created: a brand created after it is never it, and a brand renamed
since is found by its name then (the earliest ``brand.renamed`` audit entry after the
campaign's creation says what it was called). A campaign whose brand none of that names keeps
NULL: its figure is not measured and its queued assets are not run under a namesake.

Revision ID: 1000
Revises: 0990
Create Date: 2027-03-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1000"
down_revision: str | Sequence[str] | None = "0990"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("brand_id", sa.String(length=64), nullable=True))
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    campaigns = sa.table(
        "campaigns",
        sa.column("id"),
        sa.column("tenant"),
        sa.column("brand"),
        sa.column("brand_id"),
        sa.column("created_at"),
    )
    brands = sa.table(
        "brands", sa.column("id"), sa.column("tenant"), sa.column("name"), sa.column("created_at")
    )
    audit = sa.table(
        "audit_log",
        sa.column("id"),
        sa.column("at"),
        sa.column("tenant"),
        sa.column("action"),
        sa.column("subject_type"),
        sa.column("subject_id"),
        sa.column("detail", sa.JSON),
    )
    # every (campaign, brand of its tenant that existed when the campaign was created)
    candidates = conn.execute(
        sa.select(campaigns.c.id, campaigns.c.brand, brands.c.id, brands.c.name).join(
            brands,
            sa.and_(
                brands.c.tenant == campaigns.c.tenant, brands.c.created_at <= campaigns.c.created_at
            ),
        )
    ).all()
    # each such brand's renames after the campaign was created, earliest first
    renames = conn.execute(
        sa.select(campaigns.c.id, audit.c.subject_id, audit.c.detail)
        .join(
            audit,
            sa.and_(
                audit.c.tenant == campaigns.c.tenant,
                audit.c.action == "brand.renamed",
                audit.c.subject_type == "brand",
                audit.c.at > campaigns.c.created_at,
            ),
        )
        .order_by(audit.c.at, audit.c.id)
    ).all()
    name_then: dict[tuple[str, str], str] = {}
    for campaign_id, brand_id, detail in renames:
        if isinstance(detail, dict) and isinstance(detail.get("from"), str):
            name_then.setdefault((campaign_id, brand_id), detail["from"])
    owners: dict[str, set[str]] = {}
    for campaign_id, campaign_brand, brand_id, name in candidates:
        if name_then.get((campaign_id, brand_id), name) == campaign_brand:
            owners.setdefault(campaign_id, set()).add(brand_id)
    found = [
        {"campaign_key": campaign_id, "brand_key": next(iter(ids))}
        for campaign_id, ids in owners.items()
        if len(ids) == 1
    ]
    if found:
        conn.execute(
            sa.update(campaigns)
            .where(campaigns.c.id == sa.bindparam("campaign_key"))
            .values(brand_id=sa.bindparam("brand_key")),
            found,
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("brand_id")
