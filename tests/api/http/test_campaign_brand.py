"""A campaign keeps its brand by id, as a thread does (docs/http-api.md, Campaigns): after the
brand is renamed, and a new brand takes the old name, the campaign shows the new name, its
assets still queued run under its brand, and its consistency is measured against its brand's
palette - not null, not the newcomer's (outside tester: the figure went null over four images,
or was measured against the brand that took the name, once the server restarted)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from brandloop.agent.consistency import consistency
from brandloop.api.routers import campaigns as campaign_routes
from brandloop.artifacts import ArtifactStore
from brandloop.policies.brandkit import BrandKit
from brandloop.settings import Settings
from tests.api.http.conftest import Keys, brand_kit, wait_job


def test_a_campaign_follows_its_brand_through_a_rename_and_no_namesake_takes_it(
    make_client: Callable[..., TestClient], keys: Keys, settings: Settings
) -> None:
    admin, creator = keys["A", "admin"], keys["A", "creator"]
    idle = make_client(workers=0)  # nothing runs: the assets stay queued through the rename
    acme = idle.post("/v1/brands", json=brand_kit(), headers=admin).json()
    body = {
        "name": "autumn",
        "brand": "Acme Coffee",
        "budget_usd": 2.0,
        "assets": [
            {"brief": "a coffee cup on an oak table", "formats": ["64x64"], "count": 2},
            {"brief": "a latte with foam art", "formats": ["64x64"], "count": 2},
        ],
    }
    made = idle.post("/v1/campaigns", json=body, headers=creator)
    assert made.status_code == 202, made.text
    campaign_id = made.json()["id"]
    assert made.json()["brand_id"] == acme["id"]
    renamed = idle.post(
        f"/v1/brands/{acme['id']}/rename", json={"name": "Acme Roasters"}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text
    newcomer_kit = {**brand_kit("bloom-skincare"), "name": "Acme Coffee"}
    newcomer = idle.post("/v1/brands", json=newcomer_kit, headers=admin)
    assert newcomer.status_code == 201, newcomer.text

    client = make_client()  # a replica that runs the queued assets
    for asset in made.json()["assets"]:
        job = wait_job(client, asset["job"]["id"], creator)
        result = job["result"] or {}
        assert result.get("brand") == "Acme Roasters", (job["error"], result)
    campaign_routes._consistency_cache.clear()  # as a restarted server finds it
    shown = client.get(f"/v1/campaigns/{campaign_id}", headers=creator).json()
    assert (shown["brand"], shown["brand_id"]) == ("Acme Roasters", acme["id"])
    assert shown["state"] == "done", shown
    listed = client.get("/v1/campaigns", headers=creator).json()
    assert [(c["id"], c["brand"]) for c in listed] == [(campaign_id, "Acme Roasters")]
    shas = [
        image["sha256"]
        for asset in shown["assets"]
        for image in (asset["job"]["result"] or {}).get("images", [])
    ]
    figure = shown["consistency"]
    assert figure["images"] == len(shas)
    if len(shas) < 2:  # a run may accept nothing; then there is nothing to measure
        assert figure["palette_spread"] is None
        return
    store = ArtifactStore(settings.artifacts_dir)
    images = [store.get(sha) for sha in shas]
    own = consistency(images, BrandKit.model_validate(brand_kit()))
    other = consistency(images, BrandKit.model_validate(newcomer_kit))
    assert figure["palette_spread"] == own.palette_spread != other.palette_spread
