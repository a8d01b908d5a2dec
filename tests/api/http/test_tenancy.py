"""Tenant boundaries: tenant B's keys (even admin) get 404 for every one of tenant A's things,
exactly as for things that do not exist, and B's lists never show A's rows."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem, brand_kit, wait_job


def test_tenant_b_gets_404_for_each_of_tenant_a_resources(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    a = keys["A", "admin"]
    job = client.post(
        "/v1/generations?wait=60",
        json={"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256"},
        headers=a,
    ).json()
    assert job["state"] == "succeeded", job
    sha = job["result"]["images"][0]["sha256"]
    thread = client.post(
        "/v1/threads", json={"brand": "Acme Coffee", "title": "t"}, headers=a
    ).json()
    campaign = client.post(
        "/v1/campaigns",
        json={
            "brand": "Acme Coffee",
            "budget_usd": 0.1,
            "assets": [{"brief": "a cup", "formats": ["128x128"]}],
        },
        headers=a,
    ).json()
    wait_job(client, campaign["assets"][0]["job"]["id"], a)
    version = client.post("/v1/templates/a-only/versions", json={"body": "{{ brief }}"}, headers=a)
    assert version.status_code == 201
    key_id = client.get("/v1/keys", headers=a).json()[0]["id"]

    b = keys["B", "admin"]
    # B has a brand of the same name: names never cross tenants either
    assert client.post("/v1/brands", json=brand_kit("bloom-skincare"), headers=b).status_code == 201

    a_resources = [
        ("GET", f"/v1/jobs/{job['id']}", None),
        ("GET", f"/v1/jobs/{job['id']}/events", None),
        ("POST", f"/v1/jobs/{job['id']}/cancel", None),
        ("GET", f"/v1/runs/{job['run_id']}", None),
        ("GET", f"/v1/runs/{job['run_id']}/trace", None),
        ("GET", f"/v1/runs/{job['run_id']}/receipts", None),
        ("GET", f"/v1/artifacts/{sha}", None),
        ("GET", f"/v1/artifacts/{sha}/credentials", None),
        ("GET", f"/v1/threads/{thread['id']}", None),
        ("POST", f"/v1/threads/{thread['id']}/messages", {"content": "warmer"}),
        ("GET", f"/v1/campaigns/{campaign['id']}", None),
        ("GET", f"/v1/brands/{acme['id']}", None),
        ("GET", "/v1/brands/Acme Coffee", None),
        ("GET", "/v1/templates/a-only", None),
        ("POST", "/v1/templates/a-only/versions/1/review", {"decision": "approve"}),
        ("PUT", "/v1/templates/a-only/labels/production", {"weights": {"1": 1}}),
        ("GET", "/v1/memory/search?brand=Acme%20Coffee&q=cup", None),
        ("POST", "/v1/memory/notes", {"brand": "Acme Coffee", "text": "warm"}),
        ("POST", f"/v1/review/runs/{job['run_id']}", {"decision": "approve"}),
        ("DELETE", f"/v1/keys/{key_id}", None),
        ("POST", "/v1/generations", {"brief": "a cup", "brand": "Acme Coffee"}),
        (
            "POST",
            "/v1/generations",
            {"brief": "a cup", "brand": "Bloom Skincare", "thread_id": thread["id"]},
        ),
        ("POST", "/v1/threads", {"brand": acme["id"]}),
        (
            "POST",
            "/v1/campaigns",
            {"brand": "Acme Coffee", "budget_usd": 0.1, "assets": [{"brief": "x"}]},
        ),
    ]
    for method, path, body in a_resources:
        response = client.request(method, path, json=body, headers=b)
        assert_problem(response, 404, "not-found")
        # ... and tenant A still sees it (the 404 is about the tenant, not the path)
        if method == "GET":
            assert client.request(method, path, headers=a).status_code == 200, path

    # lists show only B's own rows
    for path in ("/v1/jobs", "/v1/runs", "/v1/threads", "/v1/campaigns"):
        assert client.get(path, headers=b).json() == [], path
    assert [x["name"] for x in client.get("/v1/brands", headers=b).json()] == ["Bloom Skincare"]
    assert "a-only" not in [t["name"] for t in client.get("/v1/templates", headers=b).json()]
    assert all(k["tenant"] == "B" for k in client.get("/v1/keys", headers=b).json())
    assert client.get("/v1/costs", headers=b).json()["runs"] == 0
