"""A campaign's ``state`` is ``queued`` until one of its assets has started (docs/http-api.md,
Campaigns): an asset cancelled before it ran never started, so a campaign whose other assets
still wait is ``queued``, not ``running`` (an outside tester's report)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from brandloop.agent.budgets import set_budget
from brandloop.registry.db import Database
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


def test_a_campaign_shows_the_limit_its_runs_are_held_to(
    make_client: Callable[..., TestClient], keys: Keys, db: Database
) -> None:
    """After `brandloop campaign budget` lowered an API campaign's limit, GET still showed the
    budget it was created with, and its assets' shares were cut from that (an outside tester:
    two assets failed on a budget the view did not show)."""
    client = make_client(workers=0)
    assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
    made = client.post(
        "/v1/campaigns",
        json={"brand": "Acme Coffee", "name": "lowered", "budget_usd": 1,
              "assets": [{"brief": "a cup"}]},
        headers=keys["A", "creator"],
    ).json()  # fmt: skip
    assert made["budget_usd"] == 1
    with db.session() as session:  # what `brandloop campaign budget 0.1 --campaign-id` does
        set_budget(session, tenant="A", scope="campaign", scope_id=made["id"], limit_usd=0.1)
    shown = client.get(f"/v1/campaigns/{made['id']}", headers=keys["A", "viewer"]).json()
    assert shown["budget_usd"] == 0.1
    listed = client.get("/v1/campaigns", headers=keys["A", "viewer"]).json()
    assert [c["budget_usd"] for c in listed] == [0.1]
