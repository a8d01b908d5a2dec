"""What one submission asks of the database (issue 12's rate: the CPU per request bounds it).

A generation's submission reads the brand and the template it will render once each, in the
request's own session, then takes the tenant's lock and holds the quota: ten statements on
SQLite (the brand, the template, its label, its versions' statuses, the version, the lock,
the job, the quota's two sums, the hold). What it reads is read for this request: a label
moved, or a version rejected, is what the very next submission sees
(tests/api/http/test_templates_rejection.py)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.api.http.conftest import Keys, both_databases, brand_kit

settings = pytest.fixture(both_databases)

BODY = {"brief": "a steaming cup", "brand": "Acme Coffee", "size": "64x64"}


class Statements:
    """Every SQL statement the process sends while ``recording``."""

    def __init__(self) -> None:
        self.recording = False
        self.sent: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if self.recording:
            self.sent.append(statement)

    def reads_of(self) -> Counter[str]:
        """How many SELECTs read each table (the first one named after FROM)."""
        tables = (re.search(r"\bFROM\s+(\w+)", s) for s in self.sent if s.startswith("SELECT"))
        return Counter(m[1] for m in tables if m is not None)


@pytest.fixture
def statements() -> Iterator[Statements]:
    listener = Statements()
    event.listen(Engine, "before_cursor_execute", listener)
    yield listener
    event.remove(Engine, "before_cursor_execute", listener)


def test_a_submission_reads_its_brand_and_template_once(
    make_client: Any, keys: Keys, statements: Statements, database: str
) -> None:
    client: TestClient = make_client(workers=0)
    headers = keys["A", "creator"]
    created = client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"])
    assert created.status_code == 201, created.text
    # the first submission checks the request (brand, template, catalog) and seeds the
    # shipped templates; the ones after it re-check only what the brief and run id change
    assert client.post("/v1/generations", json=BODY, headers=headers).status_code == 202
    statements.recording = True
    response = client.post("/v1/generations", json=BODY, headers=headers)
    statements.recording = False
    assert response.status_code == 202, response.text
    reads = statements.reads_of()
    assert reads["brands"] == 1, statements.sent
    assert reads["templates"] == 1, statements.sent
    assert reads["template_labels"] == 1, statements.sent
    assert reads["template_versions"] == 2, statements.sent  # the statuses, then the version
    if database == "sqlite":
        assert len(statements.sent) <= 10, statements.sent
