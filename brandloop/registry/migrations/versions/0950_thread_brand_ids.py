"""threads record their brand's id, not only its name

A thread kept its brand by name: once the brand was renamed, a follow-up naming the new name
was a 409 and one naming none ran under a name no brand had; a new brand taking the old name
took the thread over. ``brand_id`` is the brand, whatever it is called later.

Threads from before this revision get the id of the brand that had the thread's name, in the
thread's tenant, when the thread was started: a brand created after the thread is never it,
and a brand renamed since is found by its name then (the earliest ``brand.renamed`` audit entry
after the thread's start says what it was called). A thread whose brand none of that names
keeps NULL: its follow-ups are refused (409) rather than run under a namesake.

Revision ID: 0950
Revises: 0940
Create Date: 2027-02-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0950"
down_revision: str | Sequence[str] | None = "0940"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("threads") as batch:
        batch.add_column(sa.Column("brand_id", sa.String(length=64), nullable=True))
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    threads = sa.table(
        "threads",
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
    # every (thread, brand of its tenant that existed when the thread was started)
    candidates = conn.execute(
        sa.select(threads.c.id, threads.c.brand, brands.c.id, brands.c.name).join(
            brands,
            sa.and_(
                brands.c.tenant == threads.c.tenant, brands.c.created_at <= threads.c.created_at
            ),
        )
    ).all()
    # each such brand's renames after the thread was started, earliest first
    renames = conn.execute(
        sa.select(threads.c.id, audit.c.subject_id, audit.c.detail)
        .join(
            audit,
            sa.and_(
                audit.c.tenant == threads.c.tenant,
                audit.c.action == "brand.renamed",
                audit.c.subject_type == "brand",
                audit.c.at > threads.c.created_at,
            ),
        )
        .order_by(audit.c.at, audit.c.id)
    ).all()
    name_then: dict[tuple[str, str], str] = {}
    for thread_id, brand_id, detail in renames:
        if isinstance(detail, dict) and isinstance(detail.get("from"), str):
            name_then.setdefault((thread_id, brand_id), detail["from"])
    owners: dict[str, set[str]] = {}
    for thread_id, thread_brand, brand_id, name in candidates:
        if name_then.get((thread_id, brand_id), name) == thread_brand:
            owners.setdefault(thread_id, set()).add(brand_id)
    found = [
        {"thread_key": thread_id, "brand_key": next(iter(ids))}
        for thread_id, ids in owners.items()
        if len(ids) == 1
    ]
    if found:
        conn.execute(
            sa.update(threads)
            .where(threads.c.id == sa.bindparam("thread_key"))
            .values(brand_id=sa.bindparam("brand_key")),
            found,
        )


def downgrade() -> None:
    with op.batch_alter_table("threads") as batch:
        batch.drop_column("brand_id")
