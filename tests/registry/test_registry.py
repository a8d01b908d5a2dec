"""The registry on a real SQLite file: migrations, brands, runs, attempts, the audit log."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from brandloop.domain import Attempt, BrandKit, Candidate, PaletteColour
from brandloop.policies.brandkit import load_brand_kit
from brandloop.registry import crud
from brandloop.registry.db import Database, head_revisions
from brandloop.registry.schema import Base
from brandloop.settings import Settings


@pytest.mark.databases("sqlite")
def test_first_use_migrates_a_new_sqlite_file(settings: Settings, db: Database) -> None:
    engine = db.ensure_schema().engine
    tables = set(sa.inspect(engine).get_table_names())
    assert {
        "brands",
        "templates",
        "template_versions",
        "template_labels",
        "models",
        "runs",
        "run_events",
        "attempts",
        "artifacts",
        "audit_log",
    } <= tables
    with engine.connect() as conn:
        assert set(MigrationContext.configure(conn).get_current_heads()) == head_revisions()
    assert Path(settings.resolved_database_url.split("///")[1]).is_file()


def _ours(name: str | None, kind: str, parents: dict[str, str | None]) -> bool:
    """The registry's own tables, not LangGraph's checkpoint tables sharing a PostgreSQL database."""
    table = name if kind == "table" else parents.get("table_name")
    return table is None or table in Base.metadata.tables


def test_migrations_match_the_models(settings: Settings, db: Database) -> None:
    engine = db.ensure_schema().engine
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _ours})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_audit_log_is_append_only(settings: Settings, db: Database) -> None:
    with db.session() as session:
        crud.audit(
            session, tenant="t", actor="ann", action="x", subject_type="brand", subject_id="b1"
        )
    engine = db.engine
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT actor FROM audit_log")).scalars().all() == ["ann"]


def test_brands_by_id_or_name_and_updates_are_audited(
    settings: Settings, db: Database, acme_kit_path: Path
) -> None:
    kit = load_brand_kit(acme_kit_path)
    with db.session() as session:
        row = crud.upsert_brand(session, tenant="t", kit=kit)
        brand_id = row.id
    with db.session() as session:
        assert crud.get_brand(session, tenant="t", ref=brand_id) is not None
        assert crud.get_brand(session, tenant="t", ref="acme coffee") is not None
        assert crud.get_brand(session, tenant="other", ref=brand_id) is None
        crud.upsert_brand(session, tenant="t", kit=kit)  # unchanged: no new audit entry
        changed = kit.model_copy(update={"tone": ["bold"]})
        crud.upsert_brand(session, tenant="t", kit=changed)
    with db.session() as session:
        actions = [a.action for a in crud.list_audit(session, tenant="t", subject_id=brand_id)]
        assert actions == ["brand.created", "brand.updated"]
        assert crud.brand_kit(crud.get_brand(session, tenant="t", ref=brand_id)).tone == ["bold"]  # type: ignore[arg-type]


def test_attempts_are_unique_per_idempotency_key(settings: Settings, db: Database) -> None:
    kit = BrandKit(name="X", palette=[PaletteColour(hex="#112233")])
    cand = Candidate(
        id="c1", template="t@1", prompt="p", model="procedural/draft", seed=1, width=64, height=64
    )
    with db.session() as session:
        brand = crud.upsert_brand(session, tenant="t", kit=kit)
        crud.create_run(
            session,
            run_id="r1",
            tenant="t",
            brand_id=brand.id,
            brand_name="X",
            brief="b",
            request={},
        )
        crud.upsert_attempt(
            session,
            run_id="r1",
            attempt=Attempt(
                id="a1", candidate=cand, outcome="pending", idempotency_key="k1", cost_usd=0.01
            ),
        )
        crud.upsert_attempt(
            session,
            run_id="r1",
            attempt=Attempt(
                id="a1", candidate=cand, outcome="accepted", idempotency_key="k1", cost_usd=0.01
            ),
        )
    with db.session() as session:
        rows = crud.list_attempts(session, run_id="r1")
        assert [(r.id, r.outcome) for r in rows] == [("a1", "accepted")]
        assert crud.attempt_by_key(session, idempotency_key="k1") is not None
    with pytest.raises(sa.exc.IntegrityError), db.session() as session:
        crud.upsert_attempt(
            session,
            run_id="r1",
            attempt=Attempt(id="a2", candidate=cand, outcome="pending", idempotency_key="k1"),
        )


def test_the_migrations_have_a_single_head() -> None:
    assert len(head_revisions()) == 1
