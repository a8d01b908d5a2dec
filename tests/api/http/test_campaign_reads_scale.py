"""Reading a campaign costs the same few statements however many assets it has: a queued
job no worker has claimed costs $0 without reading its run (a campaign of 400 assets was
answered with one run read per asset, 5 s for `GET /v1/campaigns/{id}` on a busy machine)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.api.http.conftest import Keys, brand_kit

FORMATS = ["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "512x512"]


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine runs inside the block."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def campaign_of(client: TestClient, keys: Keys, assets: int) -> dict[str, Any]:
    made = client.post(
        "/v1/campaigns",
        json={
            "brand": "Acme Coffee",
            "name": f"{assets} assets",
            "budget_usd": 10,
            "assets": [{"brief": f"a cup, take {i}", "formats": FORMATS} for i in range(assets)],
        },
        headers=keys["A", "creator"],
    )
    assert made.status_code == 202, made.text
    body: dict[str, Any] = made.json()
    assert len(body["assets"]) == assets * len(FORMATS)
    assert all(a["job"]["cost_usd"] == 0 for a in body["assets"]), body["assets"][:2]
    return body


def test_reading_a_campaign_does_not_read_each_queued_assets_run(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    client = make_client(workers=0)  # nothing runs: every asset stays queued, never claimed
    assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
    small, large = campaign_of(client, keys, 1), campaign_of(client, keys, 6)
    counts = []
    for campaign in (small, large):
        client.get(f"/v1/campaigns/{campaign['id']}", headers=keys["A", "viewer"])  # warm
        with statements() as seen:
            read = client.get(f"/v1/campaigns/{campaign['id']}", headers=keys["A", "viewer"])
        assert read.status_code == 200, read.text
        assert read.json()["spent_usd"] == 0
        counts.append(len(seen))
    assert counts[0] == counts[1], counts  # 8 jobs or 48: the same statements
