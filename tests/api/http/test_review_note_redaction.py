"""Notes given through the API - a template's submit and rejection, a verdict on a run - are
stored, and answered, as a brief is: personal data and key-shaped tokens redacted (an outside
tester found them in clear through the CLI; the API's were stored the same way)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.registry.db import Database
from tests.api.http.conftest import Keys, both_databases
from tests.api.test_cli_review_note_redaction import EMAIL, KEY, NOTE
from tests.databases import stored_anywhere

settings = pytest.fixture(name="settings")(both_databases)


def test_notes_through_the_api_are_stored_redacted(
    client: TestClient, keys: Keys, db: Database, acme: dict[str, Any]
) -> None:
    ana = keys.of("A", "ana", "creator")
    made = client.post(
        "/v1/templates/noted/versions",
        json={"body": "{{ brief }}. {{ palette_clause }}", "model_hints": ["procedural/draft"]},
        headers=ana,
    )
    assert made.status_code == 201, made.text
    submitted = client.post(
        "/v1/templates/noted/versions/1/submit", json={"note": NOTE}, headers=ana
    )
    assert submitted.status_code == 200, submitted.text
    lee = keys.of("A", "lee", "approver")
    rejected = client.post(
        "/v1/templates/noted/versions/1/review",
        json={"decision": "reject", "note": NOTE},
        headers=lee,
    )
    assert rejected.status_code == 200, rejected.text
    # a verdict on a delivered run (recorded only) and its answer
    done = client.post(
        "/v1/generations?wait=60",
        json={"brief": "a cup", "brand": "Acme Coffee", "size": "128x128"},
        headers=keys["A", "creator"],
    ).json()
    verdict = client.post(
        f"/v1/review/runs/{done['run_id']}", json={"decision": "approve", "note": NOTE},
        headers=lee,
    )  # fmt: skip
    assert verdict.status_code == 200, verdict.text
    assert KEY not in verdict.text and EMAIL not in verdict.text, verdict.text
    for needle in (KEY, EMAIL):
        assert stored_anywhere(db, needle) == [], needle
