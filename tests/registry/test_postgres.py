"""The registry on a real PostgreSQL server: the same migrations, the same data access."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from brandloop.domain import BrandKit, PaletteColour
from brandloop.registry import crud
from brandloop.registry.db import get_engine, session_scope
from brandloop.registry.schema import Base
from tests.services import service_env

pytestmark = pytest.mark.server


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the test server for each test, dropped afterwards."""
    base = service_env("BRANDLOOP_TEST_POSTGRES_URL")
    name = f"bl_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + f"/{name}"
    yield url
    get_engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migrations_run_on_postgres_and_match_the_models(pg_url: str) -> None:
    engine = get_engine(pg_url)
    assert engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_audit_log_is_append_only_on_postgres(pg_url: str) -> None:
    with session_scope(pg_url) as session:
        crud.audit(session, tenant="t", actor="ann", action="x", subject_type="brand", subject_id="b")
    engine = get_engine(pg_url)
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT actor FROM audit_log")).scalars().all() == ["ann"]


def test_brands_round_trip_on_postgres(pg_url: str) -> None:
    kit = BrandKit(name="Pg Brand", palette=[PaletteColour(hex="#123456", name="ink")], tone=["calm"])
    with session_scope(pg_url) as session:
        brand_id = crud.upsert_brand(session, tenant="t", kit=kit).id
    with session_scope(pg_url) as session:
        row = crud.get_brand(session, tenant="t", ref="pg brand")
        assert row is not None and row.id == brand_id
        assert crud.brand_kit(row) == kit


async def test_checkpoint_tables_set_up_concurrently_without_a_race(pg_url: str) -> None:
    """Workers starting together each open the checkpointer first: the setup must not collide."""
    import asyncio

    from brandloop.agent.checkpoints import postgres_checkpointer

    async def open_one() -> None:
        async with postgres_checkpointer(pg_url):
            pass

    await asyncio.gather(*(open_one() for _ in range(6)))
    with get_engine(pg_url).connect() as conn:
        versions = conn.execute(sa.text("SELECT count(*) FROM checkpoint_migrations")).scalar()
    assert versions and versions > 0
