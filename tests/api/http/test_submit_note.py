"""``POST /v1/templates/{name}/versions/{v}/submit`` takes an optional body with a ``note`` for
the reviewer (at most 2,000 characters, as a review's note and ``templates submit --note``),
stored as the CLI stores one; an unknown member or a longer note is a 422 and nothing changes.
It once answered 200 to ``{"note": <50,000 characters>}`` and dropped the note (outside
tester). The POST routes that take no fields (cancel, resume) refuse a member the same way:
every body is strict, an empty one (or none) is what they take."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.templates import governance
from tests.api.http.conftest import Keys, assert_problem, both_databases

settings = pytest.fixture(name="settings")(both_databases)

BODY = {"body": "{{ brief }}. {{ palette_clause }}", "model_hints": ["procedural/draft"]}
URL = "/v1/templates/sub-n/versions/1/submit"


def _notes(db: Database) -> list[tuple[str, str, str]]:
    with db.session() as session:
        template = crud.get_template(session, tenant="A", name="sub-n")
        assert template is not None
        return [(r.actor, r.action, r.note) for r in governance.reviews(session, template=template)]


def _status(client: TestClient, headers: dict[str, str]) -> str:
    got = client.get("/v1/templates/sub-n", headers=headers)
    assert got.status_code == 200, got.text
    status: str = got.json()["versions"][0]["status"]
    return status


@pytest.fixture
def ana(client: TestClient, keys: Keys) -> dict[str, str]:
    """ana's key, and her draft sub-n@1."""
    headers = keys.of("A", "ana", "creator")
    made = client.post("/v1/templates/sub-n/versions", json=BODY, headers=headers)
    assert made.status_code == 201, made.text
    return headers


def test_a_submit_note_is_stored_as_the_clis_is(
    client: TestClient, ana: dict[str, str], db: Database
) -> None:
    note = "n" * 2000
    submitted = client.post(URL, json={"note": note}, headers=ana)
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "in_review"
    assert _notes(db) == [("ana", "submit", note)]


@pytest.mark.parametrize(
    "body",
    [{"note": "n" * 50_000}, {"note": "n" * 2001}, {"comment": "x"}, {"note": 3}, ["note"]],
    ids=["50000", "2001", "unknown", "number", "list"],
)
def test_an_over_long_note_or_an_unknown_member_is_a_422_changing_nothing(
    client: TestClient, ana: dict[str, str], db: Database, body: Any
) -> None:
    refused = client.post(URL, json=body, headers=ana)
    problem = assert_problem(refused, 422, "validation")
    assert "n" * 100 not in refused.text
    assert problem["errors"][0]["loc"][0] == "body", problem
    assert _status(client, ana) == "draft"
    assert _notes(db) == []


@pytest.mark.parametrize("body", [None, {}], ids=["none", "empty"])
def test_no_body_or_an_empty_one_submits_without_a_note(
    client: TestClient, ana: dict[str, str], db: Database, body: Any
) -> None:
    submitted = client.post(URL, headers=ana, **({} if body is None else {"json": body}))
    assert submitted.status_code == 200, submitted.text
    assert _notes(db) == [("ana", "submit", "")]


def test_the_schema_documents_the_optional_note(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    op = schema["paths"]["/v1/templates/{name}/versions/{version}/submit"]["post"]
    assert op["requestBody"].get("required", False) is False
    ref = op["requestBody"]["content"]["application/json"]["schema"]
    ref = next((o for o in ref.get("anyOf", [ref]) if "$ref" in o), ref)["$ref"]
    model = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert model["additionalProperties"] is False
    assert model["properties"]["note"]["maxLength"] == 2000


@pytest.mark.parametrize("path", ["/v1/jobs/job_nope/cancel", "/v1/runs/run_nope/resume"])
def test_a_route_taking_no_fields_refuses_a_member(
    client: TestClient, keys: Keys, path: str
) -> None:
    creator = keys["A", "creator"]
    refused = client.post(path, json={"note": "x"}, headers=creator)
    assert_problem(refused, 422, "validation")
    # without a body, or with an empty one, it gets as far as looking the job or run up
    for extra in ({}, {"json": {}}):
        assert_problem(client.post(path, headers=creator, **extra), 404, "not-found")
