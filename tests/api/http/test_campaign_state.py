"""A campaign's ``state`` is ``queued`` until one of its assets has started (docs/http-api.md,
Campaigns): an asset cancelled before it ran never started, so a campaign whose other assets
still wait is ``queued``, not ``running`` (an outside tester's report)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, brand_kit


def test_a_campaign_is_queued_until_an_asset_starts(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    client = make_client(workers=0)  # nothing runs: every asset stays queued
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    creator = keys["A", "creator"]
    made = client.post(
        "/v1/campaigns",
        json={
            "brand": "Acme Coffee",
            "name": "spring",
            "budget_usd": 1,
            "assets": [{"brief": "a cup", "formats": ["1:1", "16:9", "9:16"]}],
        },
        headers=creator,
    )
    assert made.status_code == 202, made.text
    campaign: dict[str, Any] = made.json()
    assert campaign["state"] == "queued"
    first = campaign["assets"][0]["job"]["id"]
    cancelled = client.post(f"/v1/jobs/{first}/cancel", headers=creator)
    assert cancelled.status_code == 200, cancelled.text
    now = client.get(f"/v1/campaigns/{campaign['id']}", headers=creator).json()
    assert now["progress"]["cancelled"] == 1 and now["progress"]["queued"] == 2, now["progress"]
    assert now["state"] == "queued", now["state"]
