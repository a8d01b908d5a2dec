"""A campaign whose budget cannot pay for one image tells the same story over HTTP as
``brandloop campaign run`` (exit 4): the campaign is ``done``, every asset's job ``failed``
with a ``budget-exhausted`` (402) error, nothing accepted, nothing spent."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, wait_job


def test_a_campaign_the_budget_stops_ends_done_with_every_job_budget_exhausted(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    creator = keys["A", "creator"]
    body = {
        "name": "zero",
        "brand": "Acme Coffee",
        "budget_usd": 0.01,  # a share of $0.005 per asset: less than one image costs
        "assets": [
            {"brief": "a steaming cup", "formats": ["768x768"], "count": 1},
            {"brief": "a coffee cup on a counter", "formats": ["768x768"], "count": 1},
        ],
    }
    created = client.post("/v1/campaigns", json=body, headers=creator)
    assert created.status_code == 202, created.text
    campaign = created.json()
    for asset in campaign["assets"]:
        job = wait_job(client, asset["job"]["id"], creator)
        assert job["state"] == "failed", job
        assert job["error"]["type"].endswith("budget-exhausted") and job["error"]["status"] == 402
        assert job["result"]["stop_cause"] == "budget" and job["result"]["images"] == []
    done = client.get(f"/v1/campaigns/{campaign['id']}", headers=keys["A", "viewer"]).json()
    assert done["state"] == "done" and done["spent_usd"] == 0.0
    assert done["progress"]["failed"] == 2 and done["progress"]["succeeded"] == 0
    assert done["consistency"] == {"images": 0, "palette_spread": None, "descriptor_spread": None}
