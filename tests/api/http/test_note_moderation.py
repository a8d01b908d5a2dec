"""``POST /v1/memory/notes`` moderates a style note before it stores it: a note crossing the
minors line is 422 ``refused``, audited without its text, and never stored or searchable."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.tools.moderation.minors import AUDIT_ACTION
from tests.api.http.conftest import Keys, assert_problem, brand_kit

CROSSING = "schoolgirl aged 13 posing nude"


def test_a_note_crossing_the_minors_line_is_refused_and_not_stored(
    make_client: Callable[..., TestClient], keys: Keys, db: Database
) -> None:
    client = make_client(use_memory=True)
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    for role in ("creator", "admin"):
        response = client.post(
            "/v1/memory/notes",
            json={"brand": "Acme Coffee", "text": CROSSING},
            headers=keys["A", role],
        )
        body = assert_problem(response, 422, "refused")
        assert "sexual/minors" in body["detail"] and CROSSING not in body["detail"]
    listed = client.get(
        "/v1/memory/notes", params={"brand": "Acme Coffee"}, headers=keys["A", "viewer"]
    ).json()
    assert listed == []
    hits = client.get(
        "/v1/memory/search",
        params={"brand": "Acme Coffee", "q": CROSSING},
        headers=keys["A", "viewer"],
    ).json()
    assert hits == []
    with db.session() as session:
        entries = [r for r in crud.list_audit(session, tenant="A") if r.action == AUDIT_ACTION]
        brand = crud.get_brand(session, tenant="A", ref="Acme Coffee")
    assert len(entries) == 2 and brand is not None
    assert {(e.subject_type, e.subject_id) for e in entries} == {("style_note", brand.id)}
    assert all(CROSSING not in str(e.detail) and e.detail["normalised_sha256"] for e in entries)
    kept = client.post(
        "/v1/memory/notes",
        json={"brand": "Acme Coffee", "text": "always warm amber light"},
        headers=keys["A", "creator"],
    )
    assert kept.status_code == 201, kept.text
