"""Identity migrations on data made before them, on SQLite and PostgreSQL: keys become
principals of their own (0200)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from brandloop.registry.db import alembic_config
from tests.services import DATABASES, fresh_postgres_database


@pytest.fixture(params=DATABASES)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


def upgrade(url: str, revision: str) -> sa.Engine:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return engine


def test_keys_made_before_principals_become_principals_of_their_own(empty_url: str) -> None:
    engine = upgrade(empty_url, "0008")
    with engine.begin() as conn:
        for key_id, tenant in (("key_a1", "acme_co"), ("key_b2", "acme_co"), ("key_c3", "Acme-Co")):
            conn.execute(
                sa.text(
                    "INSERT INTO api_keys (id, tenant, role, name, secret_sha256, prefix, "
                    "created_at) VALUES (:id, :tenant, 'admin', '', :sha, 'bl_', :at)"
                ),
                {"id": key_id, "tenant": tenant, "sha": key_id * 8, "at": "2026-11-30 10:00:00"},
            )
    engine.dispose()
    engine = upgrade(empty_url, "heads")
    with engine.connect() as conn:
        keys = conn.execute(sa.text("SELECT id, principal FROM api_keys ORDER BY id")).all()
        principals = conn.execute(
            sa.text("SELECT tenant, name FROM principals ORDER BY tenant, name")
        ).all()
    engine.dispose()
    assert [tuple(k) for k in keys] == [
        ("key_a1", "key_a1"),
        ("key_b2", "key_b2"),
        ("key_c3", "key_c3"),
    ]
    assert sorted(tuple(p) for p in principals) == sorted(
        [("acme_co", "key_a1"), ("acme_co", "key_b2"), ("Acme-Co", "key_c3")]
    )
