"""A 422 for text that does not match its field's pattern says what the field takes in words,
never the pattern: a blank brief's detail once held ``String should match pattern '[^\\t\\n...``
with the invisible characters the pattern lists (zero-width space, bidi controls), and a bad
format the format's whole regex, where the CLI says "brief is empty" (outside tester). The
problem's ``errors`` keep their ``type`` (``string_pattern_mismatch``); the schema keeps the
patterns (the contract)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.domain import BLANKS
from tests.api.http.conftest import Keys, assert_problem

INVISIBLE = "\u200b\u2060\ufeff\u00ad\u180e\u202a\u2066"


def _readable(problem: dict[str, Any]) -> str:
    detail: str = problem["detail"]
    assert "pattern" not in detail, detail
    assert not any(c in detail for c in INVISIBLE), ascii(detail)
    assert "[^" not in detail and "{0," not in detail and "^" not in detail, detail
    assert problem["errors"][0]["type"] == "string_pattern_mismatch", problem
    assert problem["errors"][0]["msg"] in detail
    return detail


def _campaign(asset: dict[str, Any]) -> dict[str, Any]:
    return {"brand": "Acme Coffee", "budget_usd": 1, "assets": [asset]}


@pytest.mark.parametrize(
    ("asset", "said"),
    [
        ({"brief": "   "}, "body.assets.0.brief: brief must not be blank"),
        ({"brief": "\u200b\u2060"}, "body.assets.0.brief: brief must not be blank"),
        (
            {"brief": "a cup", "formats": ["12x"]},
            "body.assets.0.formats.0: a format must be WIDTHxHEIGHT (each side 64..4096) or W:H",
        ),
    ],
    ids=["spaces", "invisible", "format-12x"],
)
def test_a_campaign_assets_pattern_problem_is_said_in_words(
    client: TestClient, keys: Keys, asset: dict[str, Any], said: str
) -> None:
    refused = client.post("/v1/campaigns", json=_campaign(asset), headers=keys["A", "creator"])
    detail = _readable(assert_problem(refused, 422, "validation"))
    assert detail.startswith(said), detail


@pytest.mark.parametrize(
    ("method", "path", "body", "said"),
    [
        ("post", "/v1/generations", {"brand": "x", "brief": " ", "budget_usd": 1}, "brief must not be blank"),
        ("post", "/v1/generations", {"brand": "x", "brief": "a", "size": "12x"}, "size must be WIDTHxHEIGHT"),
        ("post", "/v1/generations", {"brand": "x", "brief": "a", "aspect_ratio": "0:1"}, "aspect_ratio must be W:H"),
        ("post", "/v1/generations", {"brand": "x", "brief": "a", "template": "Bad Ref"}, "template must be name, name@VERSION or name:LABEL"),
        ("post", "/v1/review/runs/run_x/assign", {"assignee": "a b"}, "assignee must be a user name"),
        ("get", "/v1/templates/Not%20A%20Name", None, "name must be a template name"),
        ("get", "/v1/artifacts/abc", None, "sha256 must be 64 lower-case hexadecimal digits"),
    ],
    ids=["blank-brief", "size", "aspect", "template-ref", "assignee", "template-name", "sha256"],
)  # fmt: skip
def test_other_pattern_problems_are_said_in_words(
    client: TestClient, keys: Keys, method: str, path: str, body: Any, said: str
) -> None:
    headers = keys["A", "admin"]
    answer = getattr(client, method)(
        path, headers=headers, **({} if body is None else {"json": body})
    )
    detail = _readable(assert_problem(answer, 422, "validation"))
    assert said in detail, detail


def test_the_schema_keeps_the_patterns(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert BLANKS[:3] in schemas["CampaignAsset"]["properties"]["brief"]["pattern"]
    assert schemas["CampaignAsset"]["properties"]["formats"]["items"]["pattern"].startswith("^(")
