"""Any API key brandloop made - another principal's, another tenant's, a revoked one - typed
into text the service would store is refused at the door, as the caller's own key is
(docs/http-api.md): 422 problem+json naming the field, saying "an API key" and never whose,
never repeating the value, nothing stored; on SQLite and PostgreSQL, and with requests at once.
Before, an admin's brief holding a creator's live key was taken (202) and the key went into
jobs, runs, the provider's prompt and the PNG receipt (tester26, defect 2)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.api.auth import create_key, get_key, revoke_key
from brandloop.registry.db import Database
from tests.api.http.conftest import Keys, assert_problem
from tests.api.http.test_credentials_in_text import CASES, _requests, _stored
from tests.databases import stored_anywhere


def _key(db: Database, tenant: str, role: str = "creator", *, revoked: bool = False) -> str:
    with db.session() as session:
        row, key = create_key(session, tenant=tenant, role=role, principal="someone")
        if revoked:
            revoke_key(session, row=row, actor="test")
    return key


def _secret(key: str) -> str:
    """The 43 random characters after ``bl_<12 hex>_``."""
    return key[16:]


def _refused(response: Any, where: list[str], key: str) -> dict[str, Any]:
    problem = assert_problem(response, 422, "validation")
    assert [e["loc"] for e in problem["errors"]] == [where], problem
    assert "holds an API key" in problem["detail"], problem
    assert key not in response.text and _secret(key) not in response.text
    assert key[:15] not in response.text  # not even the key's id
    return problem


@pytest.mark.parametrize("case", CASES)
def test_another_principals_live_key_in_any_text_is_422_and_nothing_is_stored(
    client: TestClient,
    keys: Keys,
    acme: dict[str, Any],
    db: Database,
    data_dir: Path,
    database: str,
    case: str,
) -> None:
    key = _key(db, "A")
    before = _stored(client, keys)
    method, path, body, where = _requests(key)[case]
    _refused(client.request(method, path, json=body, headers=keys["A", "admin"]), where, key)
    assert _stored(client, keys) == before
    files = data_dir if database == "sqlite" else None
    assert stored_anywhere(db, _secret(key), files) == []


def test_whose_key_it_is_is_never_told(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database
) -> None:
    """Same tenant, another tenant, revoked: one answer, word for word."""
    admin = keys["A", "admin"]
    answers = []
    for key in (_key(db, "A"), _key(db, "B", "admin"), _key(db, "A", revoked=True)):
        response = client.post(
            "/v1/generations",
            json={"brief": f"a cup labelled {key}", "brand": "Acme Coffee"},
            headers=admin,
        )
        problem = _refused(response, ["body", "brief"], key)
        answers.append((problem["detail"], problem["errors"]))
    assert answers[0] == answers[1] == answers[2]


def test_a_key_typed_against_other_characters_is_still_found(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database
) -> None:
    key = _key(db, "B")
    response = client.post(
        "/v1/threads",
        json={"brand": "Acme Coffee", "message": "a mug", "title": f"label:{key}-v2_final"},
        headers=keys["A", "creator"],
    )
    _refused(response, ["body", "title"], key)


def test_a_key_shaped_text_that_is_no_key_still_runs(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database
) -> None:
    key = _key(db, "A")
    made_up = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    response = client.post(
        "/v1/generations?wait=60",
        json={"brief": f"a cup labelled {made_up}", "brand": "Acme Coffee", "size": "64x64"},
        headers=keys["A", "creator"],
    )
    assert response.status_code == 200, response.text


def test_keys_typed_at_once_are_all_refused_and_none_is_stored(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database
) -> None:
    typed = [_key(db, tenant, revoked=bool(i % 3 == 2)) for i, tenant in enumerate("ABABAB")]
    callers = [keys["A", role] for role in ("creator", "admin")]

    def post(index: int) -> Any:
        return client.post(
            "/v1/generations",
            json={"brief": f"a cup labelled {typed[index]}", "brand": "Acme Coffee"},
            headers=callers[index % 2],
        )

    with ThreadPoolExecutor(max_workers=len(typed)) as pool:
        responses = list(pool.map(post, range(len(typed))))
    for key, response in zip(typed, responses, strict=True):
        _refused(response, ["body", "brief"], key)
    jobs = client.get("/v1/jobs", headers=keys["A", "viewer"]).json()
    for key in typed:
        assert _secret(key) not in json.dumps(jobs)
        assert stored_anywhere(db, _secret(key)) == []


def test_the_key_table_is_read_by_hash_only_for_a_key_shaped_text(db: Database) -> None:
    with db.session() as session:
        row, key = create_key(session, tenant="A", role="viewer")
    from brandloop.api.auth import key_shaped, stored_keys

    assert key_shaped(f"x{key}y") == [key] and key_shaped("bl_ and bl_0123") == []
    with db.session() as session:
        assert stored_keys(session, [key, key[:-1] + "x"]) == {key}
        assert get_key(session, tenant="A", key_id=row.id) is not None
