"""brands get a name key, unique per tenant: a brand's name is compared ignoring case and
separators (``brandloop.domain.brand_key``), as lookups already compared it ignoring case

Each brand's key is filled in from its name. Brands of one tenant whose names already share a
key (``Acme Coffee`` and ``acme coffee``, stored when names were compared exactly) keep a NULL
key, so the unique index can be made without changing or dropping anything: looking such a
name up is then refused with the ids of every brand sharing it, until an operator renames
one (``brandloop brands rename ID NEW_NAME``; ``docs/runbook.md``).

Revision ID: 0900
Revises: 0800
Create Date: 2027-01-12
"""

import re
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0900"
down_revision: str | Sequence[str] | None = "0800"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_RUN = re.compile(r"[^a-z0-9]+")


def _key(name: str) -> str:
    """``brandloop.domain.brand_key`` as of this revision (a migration keeps its own copy)."""
    return _RUN.sub("-", name.lower()).strip("-")


def upgrade() -> None:
    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_key", sa.String(length=80), nullable=True))
    conn = op.get_bind()
    owners: dict[tuple[str, str], list[str]] = defaultdict(list)
    for brand_id, tenant, name in conn.execute(sa.text("SELECT id, tenant, name FROM brands")):
        owners[(tenant, _key(name))].append(brand_id)
    keyed = [
        {"id": ids[0], "key": key} for (_, key), ids in owners.items() if len(ids) == 1
    ]
    if keyed:
        conn.execute(sa.text("UPDATE brands SET name_key = :key WHERE id = :id"), keyed)
    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.create_index("ux_brands_tenant_name_key", ["tenant", "name_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.drop_index("ux_brands_tenant_name_key")
        batch_op.drop_column("name_key")
