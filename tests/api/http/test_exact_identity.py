"""Exact identity through the HTTP API, on SQLite and PostgreSQL: the tenant ids ``acme_co``,
``acme-co``, ``Acme-Co`` and ``acme__co`` are four tenants that never see one another's runs,
artifacts or memory (every pair), while identical bytes made by two of them are readable by
both, and either deletes its own copy without touching the other's."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import permutations
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem, both_databases, brand_kit

settings = pytest.fixture(name="settings")(both_databases)

TENANTS = ("acme_co", "acme-co", "Acme-Co", "acme__co")
GEN = {"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256", "seed": 11}


def _attempt_shas(client: TestClient, run_id: str, headers: dict[str, str]) -> set[str]:
    trace = client.get(f"/v1/runs/{run_id}/trace", headers=headers)
    assert trace.status_code == 200, trace.text
    return {a["artifact_sha256"] for a in trace.json()["attempts"] if a.get("artifact_sha256")}


def test_four_lookalike_tenants_never_see_one_another(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    client = make_client(use_memory=True, workers=4)
    admins = {t: keys.of(t, "ops", "admin") for t in TENANTS}
    for headers in admins.values():
        assert client.post("/v1/brands", json=brand_kit(), headers=headers).status_code == 201

    def generate(tenant: str) -> dict[str, Any]:
        response = client.post("/v1/generations?wait=120", json=GEN, headers=admins[tenant])
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        assert job["state"] == "succeeded", job
        return job

    with ThreadPoolExecutor(len(TENANTS)) as pool:  # the four tenants at once
        jobs = dict(zip(TENANTS, pool.map(generate, TENANTS), strict=True))

    def add_note(tenant: str) -> int:
        note = {"brand": "Acme Coffee", "text": f"only {tenant} likes teal stripes"}
        return client.post("/v1/memory/notes", json=note, headers=admins[tenant]).status_code

    with ThreadPoolExecutor(len(TENANTS)) as pool:
        assert list(pool.map(add_note, TENANTS)) == [201] * len(TENANTS)

    raw = {t: _attempt_shas(client, jobs[t]["run_id"], admins[t]) for t in TENANTS}
    shared = set.intersection(*raw.values())
    assert shared, "the deterministic renderer made identical bytes for every tenant"
    delivered = {t: {i["sha256"] for i in jobs[t]["result"]["images"]} for t in TENANTS}

    for owner, other in permutations(TENANTS, 2):
        them = admins[other]
        run_id = jobs[owner]["run_id"]
        for path in (f"/v1/runs/{run_id}", f"/v1/jobs/{jobs[owner]['id']}"):
            assert_problem(client.get(path, headers=them), 404, "not-found")
        for sha in delivered[owner] - delivered[other]:
            assert_problem(client.get(f"/v1/artifacts/{sha}", headers=them), 404, "not-found")
            credentials = client.get(f"/v1/artifacts/{sha}/credentials", headers=them)
            assert_problem(credentials, 404, "not-found")
        listed = {r["run_id"] for r in client.get("/v1/runs", headers=them).json()}
        assert run_id not in listed
        hits = client.get(
            "/v1/memory/search",
            params={"brand": "Acme Coffee", "q": "teal stripes", "k": 50},
            headers=them,
        ).json()
        assert all(owner not in h["text"].split() for h in hits), (owner, other, hits)
        assert any(h["text"] == f"only {other} likes teal stripes" for h in hits)

    # identical bytes: every tenant reads its own copy
    sha = sorted(shared)[0]
    bodies = set()
    for tenant in TENANTS:
        got = client.get(f"/v1/artifacts/{sha}", headers=admins[tenant])
        assert got.status_code == 200, (tenant, got.text)
        bodies.add(got.content)
    assert len(bodies) == 1

    # the same raw bytes of an accepted image trace to each tenant's own run, never a lookalike's
    sources = {
        t: {
            r["source_sha256"]
            for r in client.get(f"/v1/runs/{jobs[t]['run_id']}/receipts", headers=admins[t]).json()
        }
        for t in TENANTS
    }
    traced = sorted(shared.intersection(*sources.values()))
    assert traced, "the deterministic renderer's accepted images are the same for every tenant"
    for tenant in TENANTS:
        report = client.get(f"/v1/artifacts/{traced[0]}/credentials", headers=admins[tenant])
        assert report.json()["match"]["run_id"] == jobs[tenant]["run_id"], tenant

    # one tenant deletes its copy: it is gone for that tenant only
    assert client.delete(f"/v1/artifacts/{sha}", headers=admins["acme_co"]).status_code == 204
    assert_problem(client.get(f"/v1/artifacts/{sha}", headers=admins["acme_co"]), 404, "not-found")
    assert_problem(
        client.delete(f"/v1/artifacts/{sha}", headers=admins["acme_co"]), 404, "not-found"
    )
    for tenant in TENANTS[1:]:
        assert client.get(f"/v1/artifacts/{sha}", headers=admins[tenant]).content in bodies


def test_deleting_an_artifact_needs_an_admin_and_a_well_formed_sha(
    client: TestClient, keys: Keys
) -> None:
    creator = keys.of("acme_co", "cy", "creator")
    assert_problem(client.delete(f"/v1/artifacts/{'a' * 64}", headers=creator), 403, "forbidden")
    admin = keys.of("acme_co", "ops", "admin")
    for bad in ("A" * 64, "a" * 63, "zz" * 32):
        response = client.delete(f"/v1/artifacts/{bad}", headers=admin)
        assert response.status_code == 422, (bad, response.text)
    assert_problem(client.delete(f"/v1/artifacts/{'a' * 64}", headers=admin), 404, "not-found")
