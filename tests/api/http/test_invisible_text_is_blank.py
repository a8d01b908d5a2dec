"""A brief (a campaign asset's, a generation's, a thread message's) or a style note made only
of characters that show nothing (zero-width space, word joiner, byte order mark, soft hyphen,
Mongolian vowel separator) is blank, as ``"   "`` is: a 422 ``validation`` problem with nothing
stored, never a 202 whose job moderation then refuses as "empty". The schema's pattern says so
too, so a client generated from it refuses the same text."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from brandloop.registry.db import Database
from brandloop.registry.models import RunRow
from brandloop.registry.models_service import CampaignRow, JobRow
from tests.api.http.conftest import Keys, assert_problem

INVISIBLE = ["\u200b", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u200b \u2060\ufeff\u00ad\u180e"]


def _stored(db: Database) -> tuple[int, ...]:
    with db.session() as session:
        return tuple(
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (CampaignRow, JobRow, RunRow)
        )


@pytest.mark.parametrize("blank", INVISIBLE)
def test_an_invisible_brief_is_a_422_like_a_blank_one(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database, blank: str
) -> None:
    creator = keys["A", "creator"]
    before = _stored(db)
    campaign = {
        "name": "zw",
        "brand": "Acme Coffee",
        "budget_usd": 0.05,
        "assets": [{"brief": "a cup", "formats": ["1:1"]}, {"brief": blank, "formats": ["1:1"]}],
    }
    problem = assert_problem(
        client.post("/v1/campaigns", json=campaign, headers=creator), 422, "validation"
    )
    assert "body.assets.1.brief" in problem["detail"], problem
    generation = {"brief": blank, "brand": "Acme Coffee", "size": "128x128"}
    problem = assert_problem(
        client.post("/v1/generations", json=generation, headers=creator), 422, "validation"
    )
    assert "body.brief" in problem["detail"], problem
    thread = {"brand": "Acme Coffee", "title": "t", "message": blank}
    assert_problem(client.post("/v1/threads", json=thread, headers=creator), 422, "validation")
    assert _stored(db) == before


def test_the_schema_states_the_rule_the_server_applies(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    pattern = re.compile(schemas["CampaignAsset"]["properties"]["brief"]["pattern"])
    for blank in [*INVISIBLE, "   ", "\u3000"]:
        assert pattern.search(blank) is None, repr(blank)
    assert pattern.search("\u200ba cup")


@pytest.mark.parametrize("blank", [*INVISIBLE, "\u2060\u200b", "   "])
def test_an_invisible_campaign_name_or_thread_title_is_left_out_as_an_empty_one_is(
    client: TestClient, keys: Keys, acme: dict[str, Any], blank: str
) -> None:
    """Both are optional and ``""`` is taken (a campaign without a name, a thread without a
    title); an outside tester's ``"\\u200b"`` was stored as given and listed as an empty link."""
    creator = keys["A", "creator"]
    campaign = {
        "name": blank,
        "brand": "Acme Coffee",
        "budget_usd": 0.05,
        "assets": [{"brief": "a cup", "formats": ["64x64"]}],
    }
    made = client.post("/v1/campaigns", json=campaign, headers=creator)
    assert made.status_code == 202, made.text
    assert made.json()["name"] == ""
    shown = client.get(f"/v1/campaigns/{made.json()['id']}", headers=creator).json()
    assert shown["name"] == ""
    thread = client.post(
        "/v1/threads", json={"brand": "Acme Coffee", "title": blank}, headers=creator
    )
    assert thread.status_code == 201, thread.text
    assert thread.json()["title"] == ""
    listed = client.get("/v1/threads", headers=creator).json()
    assert [t["title"] for t in listed if t["id"] == thread.json()["id"]] == [""]
    # text that shows something is kept as given, invisible characters and all
    named = client.post(
        "/v1/threads", json={"brand": "Acme Coffee", "title": blank + "hero"}, headers=creator
    )
    assert named.json()["title"] == blank + "hero"
