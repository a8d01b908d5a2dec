"""The registry on an empty PostgreSQL database: migrations from nothing and from an older
schema with data in it, and the checkpoint set-up race. Everything else in the suite runs on
PostgreSQL as well through the parametrised data dir (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from brandloop.registry.db import Database, alembic_config
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


def test_widening_keeps_existing_rows(pg_url: str) -> None:
    """A database at 0008, with money and counters in it, upgrades in place (migration 0300)."""
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        cfg = alembic_config(pg_url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008")
        conn.execute(
            sa.text(
                "INSERT INTO runs (id, tenant, brand_name, brief, request, status, reason,"
                " template_ref, cost_usd, attempt_count, accepted_count, created_at)"
                " VALUES ('r1', 't', '', 'b', '{}', 'succeeded', '', '', 0.0425, 7, 3, now())"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO audit_log (at, tenant, actor, action, subject_type, subject_id, detail)"
                " VALUES (now(), 't', 'ann', 'x', 'run', 'r1', '{}')"
            )
        )
    engine.dispose()
    db = Database(pg_url)
    db.upgrade()  # as `brandloop db upgrade` does
    with db.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT cost_usd, attempt_count FROM runs")).one()
        assert (float(row.cost_usd), row.attempt_count) == (0.0425, 7)
        kinds = dict(
            conn.execute(
                sa.text(
                    "SELECT column_name, data_type FROM information_schema.columns"
                    " WHERE table_name = 'runs'"
                )
            ).all()
        )
        assert kinds["cost_usd"] == "numeric" and kinds["attempt_count"] == "bigint"
        sequence = conn.execute(
            sa.text("SELECT data_type FROM pg_sequences WHERE sequencename = 'audit_log_id_seq'")
        ).scalar()
        assert sequence == "bigint"
    db.dispose()
