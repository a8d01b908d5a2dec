"""Identity migrations on data made before them, on SQLite and PostgreSQL: keys become
principals of their own (0200); artifacts are per tenant (0201); brand names get a key
compared ignoring case and separators, and names two brands already shared are refused by
name, never resolved to one of them, until one is renamed (0900)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from brandloop.errors import ConflictError
from brandloop.policies.brandkit import load_brand_kit
from brandloop.registry import crud
from brandloop.registry.db import Database, alembic_config


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


BRANDS_0800 = sa.table(
    "brands",
    sa.column("id", sa.String),
    sa.column("tenant", sa.String),
    sa.column("name", sa.String),
    sa.column("kit", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def test_brands_that_shared_a_name_before_0900_are_refused_by_name_until_one_is_renamed(
    empty_url: str, acme_kit_path: Path
) -> None:
    kit = load_brand_kit(acme_kit_path).model_dump(mode="json")
    at = datetime(2026, 12, 1, tzinfo=UTC)
    engine = upgrade(empty_url, "0800")
    with engine.begin() as conn:
        conn.execute(
            sa.insert(BRANDS_0800),
            [
                {"id": brand_id, "tenant": tenant, "name": name, "kit": {**kit, "name": name},
                 "created_at": at, "updated_at": at}
                for brand_id, tenant, name in (
                    ("brand_b1", "acme", "Acme Coffee"),
                    ("brand_b2", "acme", "acme coffee"),
                    ("brand_b3", "acme", "Acme_Coffee"),
                    ("brand_n", "acme", "Nordlys"),
                    ("brand_o", "Acme", "ACME COFFEE"),  # another tenant: exact ids
                )
            ],
        )  # fmt: skip
    engine.dispose()
    engine = upgrade(empty_url, "heads")
    with engine.connect() as conn:
        keys = {r.id: r.name_key for r in conn.execute(sa.text("SELECT id, name_key FROM brands"))}
    engine.dispose()
    assert keys == {
        "brand_b1": None,
        "brand_b2": None,
        "brand_b3": None,
        "brand_n": "nordlys",
        "brand_o": "acme-coffee",
    }
    db = Database(empty_url, migrate_on_first_use=False)
    try:
        with db.session() as session:
            for ref in ("Acme Coffee", "acme coffee", "ACME-COFFEE"):
                with pytest.raises(ConflictError) as refused:
                    crud.get_brand(session, tenant="acme", ref=ref)
                message = str(refused.value)
                assert (
                    "brand_b1 ('Acme Coffee')" in message and "brand_b2 ('acme coffee')" in message
                )
                assert "brand_b3 ('Acme_Coffee')" in message and "brands rename" in message
            assert crud.get_brand(session, tenant="acme", ref="brand_b2").name == "acme coffee"  # type: ignore[union-attr]
            assert crud.get_brand(session, tenant="Acme", ref="acme coffee").id == "brand_o"  # type: ignore[union-attr]
            with pytest.raises(ConflictError, match="ambiguous"):
                crud.store_brand(session, tenant="acme", kit=load_brand_kit(acme_kit_path))
        with db.session() as session:
            assert [a.action for a in crud.list_audit(session, tenant="acme")] == []
            crud.rename_brand(session, tenant="acme", ref="brand_b2", name="Acme Coffee Two")
            with pytest.raises(ConflictError, match=r"brand_b1 .* brand_b3"):
                crud.get_brand(session, tenant="acme", ref="acme coffee")
            crud.rename_brand(session, tenant="acme", ref="brand_b3", name="Acme Tea")
        with db.session() as session:
            assert crud.get_brand(session, tenant="acme", ref="ACME COFFEE").id == "brand_b1"  # type: ignore[union-attr]
            assert crud.get_brand(session, tenant="acme", ref="acme-coffee-two").id == "brand_b2"  # type: ignore[union-attr]
            stored = crud.store_brand(session, tenant="acme", kit=load_brand_kit(acme_kit_path))
            assert (stored.row.id, stored.row.name_key) == ("brand_b1", "acme-coffee")
    finally:
        db.dispose()


def test_stored_answers_of_key_minting_requests_are_forgotten(empty_url: str) -> None:
    """0910: an answer of ``POST /v1/keys`` the idempotency layer kept before it stopped keeping
    them held the new key's secret in clear text; the migration deletes it and keeps the rest."""
    engine = upgrade(empty_url, "0900")
    rows = [
        ("acme", "k1", "POST /v1/keys", '{"secret": "bl_live_secret"}'),
        ("acme", "k2", "POST /v1/generations", '{"id": "job_1"}'),
    ]
    with engine.begin() as conn:
        for tenant, key, method_path, body in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO idempotency_keys (tenant, key, method_path, request_sha256, "
                    "state, status_code, body, created_at) VALUES (:tenant, :key, :mp, :sha, "
                    "'done', 201, :body, :at)"
                ),
                {"tenant": tenant, "key": key, "mp": method_path, "sha": "0" * 64, "body": body,
                 "at": "2026-12-05 10:00:00"},
            )  # fmt: skip
    engine.dispose()
    engine = upgrade(empty_url, "heads")
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT key, body FROM idempotency_keys")).all()
    engine.dispose()
    assert [tuple(r) for r in kept] == [("k2", '{"id": "job_1"}')]
