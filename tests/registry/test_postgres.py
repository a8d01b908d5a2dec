"""The registry on a real PostgreSQL server: the same migrations, the same data access."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from brandloop.domain import BrandKit, PaletteColour
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.registry.schema import Base

pytestmark = pytest.mark.server


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Database]:
    """The fresh database migrated as a deployment does it (``brandloop db upgrade``)."""
    db = Database(pg_url)
    db.upgrade()
    yield db
    db.dispose()


def test_migrations_run_on_postgres_and_match_the_models(pg_db: Database) -> None:
    engine = pg_db.engine
    assert engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_audit_log_is_append_only_on_postgres(pg_db: Database) -> None:
    with pg_db.session() as session:
        crud.audit(
            session, tenant="t", actor="ann", action="x", subject_type="brand", subject_id="b"
        )
    engine = pg_db.engine
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT actor FROM audit_log")).scalars().all() == ["ann"]


def test_brands_round_trip_on_postgres(pg_db: Database) -> None:
    kit = BrandKit(
        name="Pg Brand", palette=[PaletteColour(hex="#123456", name="ink")], tone=["calm"]
    )
    with pg_db.session() as session:
        brand_id = crud.upsert_brand(session, tenant="t", kit=kit).id
    with pg_db.session() as session:
        row = crud.get_brand(session, tenant="t", ref="pg brand")
        assert row is not None and row.id == brand_id
        assert crud.brand_kit(row) == kit


async def test_checkpoint_tables_set_up_concurrently_without_a_race(
    pg_url: str, pg_db: Database
) -> None:
    """Workers starting together each open the checkpointer first: the setup must not collide."""
    import asyncio

    from brandloop.agent.checkpoints import postgres_checkpointer

    async def open_one() -> None:
        async with postgres_checkpointer(pg_url):
            pass

    await asyncio.gather(*(open_one() for _ in range(6)))
    with pg_db.engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT count(*) FROM checkpoint_migrations")).scalar()
    assert versions and versions > 0
