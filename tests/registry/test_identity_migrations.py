"""Identity migrations on data made before them, on SQLite and PostgreSQL: keys become
principals of their own (0200)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from brandloop.registry.db import alembic_config


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


def test_a_tenant_that_made_bytes_another_recorded_first_gets_its_own_copy(empty_url: str) -> None:
    engine = upgrade(empty_url, "0200")
    sha = "ab" * 32
    at = "2026-11-30 10:00:00"
    with engine.begin() as conn:
        for tenant, run in (("acme_co", "run_1"), ("acme-co", "run_2"), ("acme-co", "run_3")):
            conn.execute(
                sa.text(
                    "INSERT INTO runs (id, tenant, brand_name, brief, request, status, reason, "
                    "template_ref, cost_usd, attempt_count, accepted_count, created_at) VALUES "
                    "(:id, :tenant, 'b', 'brief', '{}', 'succeeded', '', 't', 0, 1, 1, :at)"
                ),
                {"id": run, "tenant": tenant, "at": at},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO attempts (id, run_id, iteration, model, template_ref, prompt, "
                    "negative_prompt, seed_requested, width, height, params, outcome, "
                    "artifact_sha256, idempotency_key, tries, cost_usd, latency_ms, cache_hit, "
                    "created_at) VALUES (:id, :run, 0, 'm', 't', 'p', '', 1, 8, 8, '{}', "
                    "'accepted', :sha, :id, 1, 0, 0, false, :at)"
                ),
                {"id": f"att_{run}", "run": run, "sha": sha, "at": at},
            )
        conn.execute(
            sa.text(
                "INSERT INTO artifacts (sha256, tenant, path, media_type, width, height, "
                "size_bytes, run_id, attempt_id, created_at) VALUES "
                "(:sha, 'acme_co', '/a/b.png', 'image/png', 8, 8, 99, 'run_1', 'att_run_1', :at)"
            ),
            {"sha": sha, "at": at},
        )
    engine.dispose()
    engine = upgrade(empty_url, "heads")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT tenant, sha256, path, run_id FROM artifacts ORDER BY tenant")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("acme-co", sha, "/a/b.png", "run_2"),
        ("acme_co", sha, "/a/b.png", "run_1"),
    ]
