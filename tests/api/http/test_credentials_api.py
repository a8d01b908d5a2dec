"""``GET /v1/artifacts/{sha256}/credentials``: the verify report for a tenant's own artifact,
404 for anyone else's (tenants differing only in case included), the same under concurrent
requests, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.registry.db import Database
from brandloop.settings import Settings
from brandloop.tools.credentials import CredentialReport
from tests.api.http.conftest import Keys, assert_problem, brand_kit

TENANTS = ("acme-co", "Acme-Co", "acme_co")  # lookalikes: exact ids, never folded


@pytest.fixture
def backend(settings: Settings, db: Database) -> tuple[Settings, Database]:
    """The suite's registry for this test: SQLite, then a migrated PostgreSQL database."""
    return settings, db


@pytest.fixture
def api(backend) -> Iterator[tuple[TestClient, Keys]]:
    from brandloop.api.app import create_app
    from brandloop.api.config import ApiSettings

    settings, db = backend
    app = create_app(
        settings,
        ApiSettings(workers=2, rate_limit_per_minute=100_000, rate_limit_burst=10_000),
        use_memory=False,
        database=db,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, Keys(db)


def _generate(client: TestClient, keys: Keys, tenant: str, seed: int) -> dict[str, Any]:
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys[tenant, "admin"]).status_code
        == 201
    )
    response = client.post(
        "/v1/generations?wait=60",
        json={
            "brief": f"a steaming cup, take {seed}",
            "brand": "Acme Coffee",
            "size": "128x128",
            "seed": seed,
        },
        headers=keys[tenant, "creator"],
    )
    job: dict[str, Any] = response.json()
    assert job["state"] == "succeeded", job
    return job


def test_each_tenant_verifies_its_own_artifacts_and_no_one_elses(api) -> None:
    client, keys = api
    jobs = {tenant: _generate(client, keys, tenant, seed) for seed, tenant in enumerate(TENANTS, 1)}
    shas = {t: job["result"]["images"][0]["sha256"] for t, job in jobs.items()}

    def ask(pair: tuple[str, str]) -> tuple[str, str, Any]:
        asker, owner = pair
        response = client.get(
            f"/v1/artifacts/{shas[owner]}/credentials", headers=keys[asker, "viewer"]
        )
        return asker, owner, response

    pairs = [(asker, owner) for asker in TENANTS for owner in TENANTS] * 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(ask, pairs))
    for asker, owner, response in answers:
        if asker != owner:
            assert_problem(response, 404, "not-found")
            continue
        assert response.status_code == 200, response.text
        report = CredentialReport.model_validate(response.json())
        assert report.status == "valid" and report.receipt == "matches"
        assert report.run_id == jobs[owner]["run_id"] and report.sha256 == shas[owner]
        assert report.manifest_label == jobs[owner]["result"]["images"][0]["manifest_label"]
        assert report.development_signer and report.trust == "untrusted"
        assert report.summary.startswith(f"{shas[owner][:16]}: valid - ")


def test_the_credentials_route_answers_problems_for_bad_input(api) -> None:
    client, keys = api
    viewer = keys["acme-co", "viewer"]
    assert_problem(
        client.get(f"/v1/artifacts/{'0' * 64}/credentials", headers=viewer), 404, "not-found"
    )
    for bad in ("xyz", "A" * 64, "0" * 63):
        assert client.get(f"/v1/artifacts/{bad}/credentials", headers=viewer).status_code == 422
    assert client.get(f"/v1/artifacts/{'0' * 64}/credentials").status_code == 401


def test_a_raw_attempt_image_is_reported_without_credentials_and_traced(api) -> None:
    client, keys = api
    job = _generate(client, keys, "A", 4)
    receipts = client.get(f"/v1/runs/{job['run_id']}/receipts", headers=keys["A", "viewer"]).json()
    raw = receipts[0]["source_sha256"]
    response = client.get(f"/v1/artifacts/{raw}/credentials", headers=keys["A", "viewer"])
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["status"] == "absent" and report["match"]["run_id"] == job["run_id"]
    assert report["match"]["matched_by"] == "sha256"


def test_a_misconfigured_trust_list_is_a_503_not_a_crash(
    make_client: Callable[..., TestClient], keys: Keys, settings: Settings, tmp_path, monkeypatch
) -> None:
    client = make_client()
    job = _generate(client, keys, "A", 5)
    sha = job["result"]["images"][0]["sha256"]
    bad = tmp_path / "roots.pem"
    bad.write_text("not a certificate")
    settings.c2pa_trust_anchors = bad
    response = client.get(f"/v1/artifacts/{sha}/credentials", headers=keys["A", "viewer"])
    assert_problem(response, 503, "not-ready")
    assert "not a certificate" not in response.text


def test_a_requested_output_format_is_served_and_verified(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    creator, viewer = keys["A", "creator"], keys["A", "viewer"]
    body = {
        "brief": "a steaming cup",
        "brand": "Acme Coffee",
        "size": "128x128",
        "output_format": "webp",
    }
    job = client.post("/v1/generations?wait=60", json=body, headers=creator).json()
    assert job["state"] == "succeeded", job
    image = job["result"]["images"][0]
    assert image["format"] == "webp"
    art = client.get(f"/v1/artifacts/{image['sha256']}", headers=viewer)
    assert art.status_code == 200 and art.headers["content-type"] == "image/webp"
    assert art.content[:4] == b"RIFF" and art.content[8:12] == b"WEBP"
    report = client.get(f"/v1/artifacts/{image['sha256']}/credentials", headers=viewer).json()
    assert report["status"] == "valid" and report["format"] == "webp"
    bad = client.post("/v1/generations", json={**body, "output_format": "gif"}, headers=creator)
    assert_problem(bad, 422, "validation")
