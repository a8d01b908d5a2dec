"""Migration 0950 on threads made before it, on SQLite and PostgreSQL: each thread gets the id
of the brand that had its name, in its tenant, when it was started - followed through the
renames since (the ``brand.renamed`` audit entries), never a brand created after the thread
or one that took the name later, never a brand of another tenant; a thread whose brand
cannot be told keeps NULL (its follow-ups are refused: docs/http-api.md, Threads)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import command

from brandloop.registry.db import alembic_config

BRANDS = {
    # id: tenant, name now, created
    "brand_acme": ("acme", "Acme Coffee", "2026-11-01 09:00:00"),
    "brand_old": ("acme", "New Name", "2026-11-01 09:00:00"),  # was Old Name, then Middle
    "brand_squatter": ("acme", "Old Name", "2026-11-12 09:00:00"),  # took the name later
    "brand_late": ("acme", "Gone Brand", "2026-11-01 09:00:00"),  # was Latecomer until 11-20
}
RENAMES = [
    # brand, from, to, at
    ("brand_old", "Old Name", "Middle", "2026-11-10 09:00:00"),
    ("brand_old", "Middle", "New Name", "2026-11-11 09:00:00"),
    ("brand_late", "Latecomer", "Gone Brand", "2026-11-20 09:00:00"),
]
THREADS = {
    # id: tenant, brand name, started, the brand the migration finds
    "thr_plain": ("acme", "Acme Coffee", "2026-11-05 09:00:00", "brand_acme"),
    "thr_renamed": ("acme", "Old Name", "2026-11-05 09:00:00", "brand_old"),
    "thr_halfway": ("acme", "Middle", "2026-11-10 12:00:00", "brand_old"),
    "thr_after": ("acme", "New Name", "2026-11-12 12:00:00", "brand_old"),
    "thr_squatted": ("acme", "Old Name", "2026-11-13 09:00:00", "brand_squatter"),
    "thr_gone": ("acme", "Gone Brand", "2026-11-05 09:00:00", None),
    "thr_other_tenant": ("bloom", "Acme Coffee", "2026-11-05 09:00:00", None),
}


def add_brands_and_renames(conn: sa.Connection) -> None:
    """:data:`BRANDS` and their :data:`RENAMES` (audit entries), as rows of the old schema."""
    for brand_id, (tenant, name, created) in BRANDS.items():
        conn.execute(
            sa.text(
                "INSERT INTO brands (id, tenant, name, name_key, kit, created_at, updated_at) "
                "VALUES (:id, :tenant, :name, :key, '{}', :at, :at)"
            ),
            {
                "id": brand_id,
                "tenant": tenant,
                "name": name,
                "key": name.lower().replace(" ", "-"),
                "at": created,
            },
        )
    for brand_id, before, after, at in RENAMES:
        conn.execute(
            sa.text(
                "INSERT INTO audit_log (at, tenant, actor, action, subject_type, subject_id, "
                "detail) VALUES (:at, 'acme', 'cli', 'brand.renamed', 'brand', :id, :detail)"
            ),
            {"at": at, "id": brand_id, "detail": json.dumps({"from": before, "to": after})},
        )


def upgrade(url: str, revision: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def test_threads_get_the_id_of_the_brand_they_were_started_for(empty_url: str) -> None:
    upgrade(empty_url, "0940")
    engine = sa.create_engine(empty_url)
    with engine.begin() as conn:
        add_brands_and_renames(conn)
        for thread_id, (tenant, brand, started, _) in THREADS.items():
            conn.execute(
                sa.text(
                    "INSERT INTO threads (id, tenant, brand, title, created_at) "
                    "VALUES (:id, :tenant, :brand, '', :at)"
                ),
                {"id": thread_id, "tenant": tenant, "brand": brand, "at": started},
            )
    engine.dispose()

    upgrade(empty_url, "heads")
    engine = sa.create_engine(empty_url)
    with engine.connect() as conn:
        found = dict(conn.execute(sa.text("SELECT id, brand_id FROM threads")).all())
        names = dict(conn.execute(sa.text("SELECT id, brand FROM threads")).all())
    engine.dispose()
    assert found == {thread_id: row[3] for thread_id, row in THREADS.items()}
    assert names == {thread_id: row[1] for thread_id, row in THREADS.items()}  # kept as they were

    upgrade_down(empty_url, "0940")  # and back: the column goes, the threads stay
    engine = sa.create_engine(empty_url)
    with engine.connect() as conn:
        assert "brand_id" not in {c["name"] for c in sa.inspect(conn).get_columns("threads")}
        assert conn.execute(sa.text("SELECT count(*) FROM threads")).scalar() == len(THREADS)
    engine.dispose()


def upgrade_down(url: str, revision: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
    engine.dispose()
