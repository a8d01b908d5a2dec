"""merge the feature branches (templates, agent, service, scale, attempt tries) into one head

Each area added its tables on its own branch from 0001; this revision joins them so the schema
has a single head again. It changes nothing by itself.

Revision ID: 0007
Revises: 0002, 0003, 0004, 0005, 0006
Create Date: 2026-11-25
"""

from collections.abc import Sequence

revision: str = "0007"
down_revision: str | Sequence[str] | None = ("0002", "0003", "0004", "0005", "0006")
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
