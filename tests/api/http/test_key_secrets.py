"""A key's secret is shown once, in the answer that made it, and kept nowhere but as its sha256
(docs/http-api.md, Authentication and Idempotency-Key): a repeat of ``POST /v1/keys`` with the
same ``Idempotency-Key`` - by the same admin, another admin, at once or after a revocation - is
a 409 ``secret-not-replayed`` naming the key, on SQLite and PostgreSQL, across two replicas."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.clients import client_with, post_at_once
from tests.api.http.conftest import Keys, assert_problem
from tests.backends import steady_procedural
from tests.databases import stored_anywhere

MINT = {"role": "viewer", "principal": "svc-reader"}


def _files(data_dir: Path, database: str) -> Path | None:
    return data_dir if database == "sqlite" else None


def test_a_repeat_of_a_key_mint_never_shows_or_keeps_its_secret(
    client: TestClient, keys: Keys, db: Database, data_dir: Path, database: str
) -> None:
    ana = keys.of("A", "ana", "admin")
    zed = keys.of("A", "zed", "admin")
    headers = {**ana, "Idempotency-Key": "mint-1"}
    made = client.post("/v1/keys", json=MINT, headers=headers)
    assert made.status_code == 201, made.text
    secret, key_id = made.json()["key"], made.json()["id"]
    assert stored_anywhere(db, secret, _files(data_dir, database)) == []
    reader = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/keys/me", headers=reader).json()["principal"] == "svc-reader"
    assert made.headers["cache-control"] == "no-store"

    for who in (ana, zed):  # the same admin retrying, and another admin of the tenant
        again = client.post("/v1/keys", json=MINT, headers={**who, "Idempotency-Key": "mint-1"})
        problem = assert_problem(again, 409, "secret-not-replayed")
        assert again.headers["idempotent-replayed"] == "true"
        assert key_id in problem["detail"] and f"DELETE /v1/keys/{key_id}" in problem["detail"]
        assert secret not in again.text and secret[-12:] not in again.text

    assert client.delete(f"/v1/keys/{key_id}", headers=ana).status_code == 200
    after = client.post("/v1/keys", json=MINT, headers=headers)
    assert_problem(after, 409, "secret-not-replayed")
    assert secret not in after.text
    minted = [
        k for k in client.get("/v1/keys", headers=ana).json() if k["principal"] == "svc-reader"
    ]
    assert [k["id"] for k in minted] == [key_id]  # the repeats made nothing
    assert stored_anywhere(db, secret, _files(data_dir, database)) == []


def test_concurrent_mints_with_one_key_show_one_secret_once(
    settings: Settings, db: Database, data_dir: Path, database: str
) -> None:
    admin = Keys(db).of("A", "ana", "admin")
    headers = {**admin, "Idempotency-Key": "mint-at-once"}
    with (
        client_with(settings, db, steady_procedural()) as first,
        client_with(settings, db, steady_procedural()) as second,
    ):
        answers = post_at_once([first, second], 8, "/v1/keys", MINT, headers)
        listed = first.get("/v1/keys", headers=admin).json()
    made = [a for a in answers if a.status_code == 201]
    assert len(made) == 1, [a.text for a in answers]
    secret = made[0].json()["key"]
    for answer in answers:
        if answer is not made[0]:
            problem = assert_problem(answer, 409, answer.json()["type"].rsplit(":", 1)[1])
            assert problem["type"].endswith(("secret-not-replayed", "idempotency-in-flight"))
            assert secret not in answer.text
    assert [k["id"] for k in listed if k["principal"] == "svc-reader"] == [made[0].json()["id"]]
    assert stored_anywhere(db, secret, _files(data_dir, database)) == []
