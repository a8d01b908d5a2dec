"""forget the stored answers of key-minting requests: they held the new key's secret

Before this revision the idempotency layer kept the whole answer of ``POST /v1/keys`` made with
an ``Idempotency-Key`` - the secret included - for its TTL (24 h), and replayed it to any
caller of the tenant with the same key. The app no longer stores that answer (it keeps a 409
``secret-not-replayed`` problem instead); this deletes the ones stored before, so no secret
stays in clear text in the database. A repeat of such a request then runs afresh (a new key),
as a request whose stored answer expired always did.

Revision ID: 0910
Revises: 0900
Create Date: 2027-01-19
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0910"
down_revision: str | Sequence[str] | None = "0900"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.get_bind().execute(
        sa.text("DELETE FROM idempotency_keys WHERE method_path = :minting"),
        {"minting": "POST /v1/keys"},
    )


def downgrade() -> None:
    """Nothing to restore: the deleted answers held secrets that must not come back."""
