"""The minors line on templates: a body or description that crosses it is refused when the
template is created, versioned or imported, whoever asks, with an audit entry that survives
the refusal (SQLite and PostgreSQL); nothing else is stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from brandloop.agent.templates import ensure_shipped_templates
from brandloop.errors import RefusedError
from brandloop.policies.catalog import load_catalog
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.registry.models import TemplateVersionRow
from brandloop.templates import files
from brandloop.templates import governance as gov
from brandloop.templates.governance import TemplateSpec
from brandloop.tools.moderation.minors import AUDIT_ACTION, template_screen
from tests.registry.conftest import pg_url  # noqa: F401  (fixture)

T = "default"
CROSSING = "{{ brief }}, a sexy schoolgirl posing by the lighthouse for {{ brand }}"
BENIGN = "{{ brief }}, children laughing in the park, {{ palette_clause }}"
#: the shipped catalog's model ids, which model hints must name
MODELS = [model.id for model in load_catalog()]


def versions(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(TemplateVersionRow)) or 0)


def refusals(db: Database) -> list[dict[str, Any]]:
    with db.session() as session:
        return [
            {"actor": r.actor, "subject": r.subject_id, "detail": r.detail}
            for r in crud.list_audit(session, tenant=T)
            if r.action == AUDIT_ACTION
        ]


def seeded(db: Database) -> Database:
    with db.session() as session:
        ensure_shipped_templates(session, tenant=T)
    return db


def _check_create_and_version(db: Database, actor: str) -> None:
    before = versions(db)
    with pytest.raises(RefusedError, match="sexual/minors"), db.session() as session:
        gov.create_template(
            session,
            tenant=T,
            name="summer",
            spec=TemplateSpec(body=CROSSING),
            actor=actor,
            screen=template_screen,
            models=MODELS,
        )
    with db.session() as session:
        gov.create_template(
            session,
            tenant=T,
            name="summer",
            spec=TemplateSpec(body=BENIGN),
            actor=actor,
            screen=template_screen,
            models=MODELS,
        )
    with pytest.raises(RefusedError, match="description"), db.session() as session:
        gov.new_version(
            session,
            tenant=T,
            name="summer",
            spec=TemplateSpec(
                body=BENIGN, description="a seductive 12-year-old model by the lighthouse"
            ),
            actor=actor,
            message="v2",
            screen=template_screen,
            models=MODELS,
        )
    assert versions(db) == before + 1
    first, second = refusals(db)
    assert (first["subject"], second["subject"]) == ("summer@1", "summer@2")
    assert first["actor"] == actor and second["detail"]["field"] == "description"
    # the audit names the layers, spans and listed terms, never the text itself
    assert "lighthouse" not in json.dumps(first) + json.dumps(second)
    assert {f["layer"] for f in first["detail"]["findings"]} >= {"minors"}


def test_create_and_version_are_refused_and_audited(db: Database) -> None:
    _check_create_and_version(seeded(db), "ana")


def test_no_role_relaxes_it(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRANDLOOP_TEMPLATE_APPROVERS", "lee")
    _check_create_and_version(seeded(db), "lee")


@pytest.mark.server
def test_the_audit_survives_the_refusal_on_postgres(pg_url: str) -> None:  # noqa: F811
    db = Database(pg_url)
    db.upgrade()
    try:
        _check_create_and_version(seeded(db), "ana")
    finally:
        db.dispose()


def test_an_import_with_one_crossing_version_imports_nothing(db: Database, tmp_path: Path) -> None:
    seeded(db)
    document = {
        "name": "summer",
        "versions": [
            {"version": 1, "body": BENIGN, "author": "ana"},
            {"version": 2, "body": CROSSING, "author": "ana"},
        ],
    }
    (tmp_path / "summer.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    before = versions(db)
    with pytest.raises(RefusedError), db.session() as session:
        files.import_templates(
            session, tenant=T, directory=tmp_path, actor="ana", screen=template_screen, models=[]
        )
    assert versions(db) == before
    (entry,) = refusals(db)
    assert entry["subject"] == "summer@2"


def test_the_negative_body_is_not_screened(db: Database) -> None:
    # a negative prompt lists what must not be shown
    with seeded(db).session() as session:
        gov.create_template(
            session,
            tenant=T,
            name="safe",
            spec=TemplateSpec(body=BENIGN, negative_body="nudity, sexy children, minors"),
            actor="ana",
            screen=template_screen,
            models=MODELS,
        )
