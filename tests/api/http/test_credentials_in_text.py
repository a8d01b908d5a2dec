"""A configured credential (or the caller's own API key) typed into text the service would store
is refused at the door (docs/http-api.md, docs/provenance.md): 422 problem+json naming the
field, never repeating the value, and nothing is stored - not the job, thread, campaign,
template or note, and not the value anywhere - while what was stored before stays, on SQLite
and PostgreSQL. Before, the key went word for word into the receipt, the signed image, the
registry, the stored artifact and brand memory (tester25d, defect 3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.http.conftest import Keys, assert_problem
from tests.databases import stored_anywhere

OPENAI_KEY = "sk-test-t25dSecretValue9876"
SIGNER_TOKEN = "signer-token-t25d-0123456789"
A1111_PASSWORD = "t25d-a1111-passw0rd"
PG_PASSWORD = "t25dPgPassw0rd"  # in a URL's userinfo: a setting's password is one too


@pytest.fixture
def settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("BRANDLOOP_C2PA_REMOTE_TOKEN", SIGNER_TOKEN)
    monkeypatch.setenv("BRANDLOOP_A1111_API_AUTH", f"admin:{A1111_PASSWORD}")
    # a provider's base URL may hold no userinfo (docs/providers.md); the broker's URL may
    monkeypatch.setenv("BRANDLOOP_REDIS_URL", f"redis://u:{PG_PASSWORD}@127.0.0.1:6379/0")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _requests(secret: str) -> dict[str, tuple[str, str, dict[str, Any], list[str]]]:
    """Every kind of text the service stores or sends on: (method, path, body, where)."""
    brand = {"brand": "Acme Coffee"}
    return {
        "generation brief": (
            "POST",
            "/v1/generations",
            {"brief": f"a cup with the label {secret} on it", **brand},
            ["body", "brief"],
        ),
        "thread message": (
            "POST",
            "/v1/threads",
            {"message": f"a mug reading {secret}", **brand},
            ["body", "message"],
        ),
        "thread title": (
            "POST",
            "/v1/threads",
            {"message": "a mug", "title": f"key {secret}", **brand},
            ["body", "title"],
        ),
        "follow-up message": (
            "POST",
            "/v1/threads/thr_0123456789abcdef/messages",
            {"content": f"now with {secret}"},
            ["body", "content"],
        ),
        "campaign brief": (
            "POST",
            "/v1/campaigns",
            {
                "name": "autumn",
                "budget_usd": 0.2,
                "assets": [{"brief": "a banner"}, {"brief": f"a poster: {secret}"}],
                **brand,
            },
            ["body", "assets", "1", "brief"],
        ),
        "template body": (
            "POST",
            "/v1/templates/leaky/versions",
            {"body": f"{{{{ brief }}}}, stamped {secret}"},
            ["body", "body"],
        ),
        "style note": (
            "POST",
            "/v1/memory/notes",
            {"text": f"always print {secret} on the cup", **brand},
            ["body", "text"],
        ),
        "review note": (
            "POST",
            "/v1/review/runs/run_0123456789abcdef",
            {"decision": "approve", "note": f"ok {secret}"},
            ["body", "note"],
        ),
    }


CASES = sorted(_requests("x"))
SECRETS = {
    "provider key": OPENAI_KEY,
    "signer token": SIGNER_TOKEN,
    "a1111 password": A1111_PASSWORD,
    "password in a URL setting": PG_PASSWORD,
}


def _stored(client: TestClient, keys: Keys) -> dict[str, Any]:
    viewer = keys["A", "viewer"]
    return {
        path: client.get(path, headers=viewer).json()
        for path in ("/v1/brands", "/v1/jobs", "/v1/threads", "/v1/campaigns", "/v1/templates")
    }


@pytest.mark.parametrize(
    ("case", "secret"),
    [(case, "provider key") for case in CASES]
    + [("generation brief", secret) for secret in sorted(SECRETS) if secret != "provider key"],
)
def test_a_configured_credential_in_any_text_is_422_naming_the_field_and_nothing_is_stored(
    client: TestClient,
    keys: Keys,
    acme: dict[str, Any],
    db: Database,
    data_dir: Path,
    database: str,
    case: str,
    secret: str,
) -> None:
    value = SECRETS[secret]
    admin = keys["A", "admin"]
    before = _stored(client, keys)
    method, path, body, where = _requests(value)[case]
    response = client.request(method, path, json=body, headers=admin)
    problem = assert_problem(response, 422, "validation")
    assert [e["loc"] for e in problem["errors"]] == [where], problem
    assert "configured credential" in problem["detail"], problem
    assert value not in response.text
    assert _stored(client, keys) == before  # what was stored before stays; nothing is added
    files = data_dir if database == "sqlite" else None
    assert stored_anywhere(db, value, files) == []


def test_the_callers_own_api_key_in_a_brief_is_refused_too(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database
) -> None:
    creator = keys["A", "creator"]
    own = creator["Authorization"].removeprefix("Bearer ")
    response = client.post(
        "/v1/generations",
        json={"brief": f"a cup, my key is {own}", "brand": "Acme Coffee"},
        headers=creator,
    )
    problem = assert_problem(response, 422, "validation")
    assert [e["loc"] for e in problem["errors"]] == [["body", "brief"]]
    assert own not in response.text
    assert stored_anywhere(db, own) == []


def test_text_without_a_credential_still_runs(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database
) -> None:
    """A brief naming no credential is taken as before (the check is for whole values)."""
    response = client.post(
        "/v1/generations?wait=60",
        json={
            "brief": f"a cup with the label {OPENAI_KEY[:7]} on it",
            "brand": "Acme Coffee",
            "providers": ["procedural"],
            "size": "64x64",
        },
        headers=keys["A", "creator"],
    )
    assert response.status_code == 200, response.text
    assert json.dumps(response.json()).count(OPENAI_KEY) == 0
