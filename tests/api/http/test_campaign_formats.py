"""``POST /v1/campaigns`` with an asset listing one format twice is refused as
``brandloop campaign run`` refuses the same campaign file: a 422 problem naming the format,
with nothing stored (no campaign, no job, no run), never two paid jobs for one asset and format.
Twice means the same image size however it is spelled (``1:1``, ``2:2``, ``1024x1024``: an
outside tester's report had three paid jobs of one 1024x1024 image)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from brandloop.registry.db import Database
from brandloop.registry.models import RunRow
from brandloop.registry.models_service import CampaignRow, JobRow
from tests.api.http.conftest import Keys, assert_problem


def _stored(db: Database) -> tuple[int, ...]:
    with db.session() as session:
        return tuple(
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (CampaignRow, JobRow, RunRow)
        )


def test_an_asset_listing_a_format_twice_is_a_422_with_nothing_stored(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database
) -> None:
    creator = keys["A", "creator"]
    before = _stored(db)
    for formats, named in ((["256x256", "256x256"], "256x256"), (["1:1", "128x128", "1:1"], "1:1")):
        body = {
            "name": "dup",
            "brand": "acme coffee",
            "budget_usd": 1,
            "assets": [
                {"brief": "a cup", "formats": ["128x128"]},
                {"brief": "a mug on a table", "formats": formats, "count": 1},
            ],
        }
        problem = assert_problem(
            client.post("/v1/campaigns", json=body, headers=creator), 422, "validation"
        )
        assert "a format is listed twice" in problem["detail"], problem
        assert named in problem["detail"], problem
        assert _stored(db) == before


def test_two_spellings_of_one_size_are_one_job_paid_once(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database
) -> None:
    # schema-valid (each text once), so accepted; planned as one job per image size (an
    # outside tester's report: 1:1, 2:2 and 1024x1024 were three paid jobs of one image)
    creator = keys["A", "creator"]
    body = {
        "name": "spellings",
        "brand": "acme coffee",
        "budget_usd": 1,
        "assets": [{"brief": "a cup", "formats": ["1:1", "2:2", "1024x1024", "16:9", "1024x576"]}],
    }
    made = client.post("/v1/campaigns", json=body, headers=creator)
    assert made.status_code == 202, made.text
    assert sorted(a["format"] for a in made.json()["assets"]) == ["16:9", "1:1"]
