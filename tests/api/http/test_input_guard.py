"""Text no registry can store (a NUL, a lone surrogate) is refused at the door with a problem,
the same on SQLite and PostgreSQL, and nothing is stored."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem, brand_kit


@pytest.mark.parametrize(
    "url",
    [
        "/v1/runs/run%00x",
        "/v1/jobs/%ED%A0%80",
        "/v1/memory/search?brand=%00&q=cup",
        "/v1/runs?limit=5&x=%FF",
    ],
    ids=["nul-in-path", "surrogate-in-path", "nul-in-query", "not-utf8-in-query"],
)
def test_unstorable_text_in_the_url_is_400(client: TestClient, keys: Keys, url: str) -> None:
    body = assert_problem(client.get(url, headers=keys["A", "viewer"]), 400, "bad-input")
    assert "NUL" in body["detail"]


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ('"Acme\\u0000Coffee"', "body.name"),
        ('"Acme\\ud800Coffee"', "body.name"),
    ],
    ids=["nul", "lone-surrogate"],
)
def test_unstorable_text_in_a_body_is_422_and_nothing_is_stored(
    client: TestClient, keys: Keys, raw: str, where: str
) -> None:
    # json.dumps would escape the backslash: put the raw escape in by hand, as a client may
    payload = json.dumps({**brand_kit(), "name": "PLACEHOLDER"}).replace('"PLACEHOLDER"', raw)
    headers = {**keys["A", "admin"], "Content-Type": "application/json"}
    response = client.post("/v1/brands", content=payload, headers=headers)
    body = assert_problem(response, 422, "validation")
    assert [e["loc"] for e in body["errors"]] == [where.split(".")]
    assert client.get("/v1/brands", headers=keys["A", "viewer"]).json() == []


def _kit_with(member: str) -> str:
    """The brand kit's JSON with ``member`` (raw JSON text) put first."""
    return "{" + member + ", " + json.dumps(brand_kit())[1:]


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (_kit_with('"name": "Globex"'), ["body", "name"]),
        (_kit_with('"tone": ["warm"], "tone": ["cold"]'), ["body", "tone"]),
        (_kit_with('"x": {"a": [{"b": 1, "b": 2}]}'), ["body", "x", "a", "0", "b"]),
    ],
    ids=["top-level", "twice-before-the-kit", "nested"],
)
def test_a_member_named_twice_in_a_body_is_422_and_nothing_is_stored(
    client: TestClient, keys: Keys, payload: str, where: list[str]
) -> None:
    """JSON parsers keep the last of two values, silently: an outside tester's label weights
    ``{"1": 1, "1": 2}`` were stored as ``{"1": 2}`` where the CLI refuses ``1=1,1=2``."""
    headers = {**keys["A", "admin"], "Content-Type": "application/json"}
    got = client.post("/v1/brands", content=payload, headers=headers)
    body = assert_problem(got, 422, "validation")
    assert where in [e["loc"] for e in body["errors"]], body
    assert "more than once" in body["detail"]
    assert client.get("/v1/brands", headers=keys["A", "viewer"]).json() == []
    # the kit with each member once is taken
    fine = client.post("/v1/brands", content=json.dumps(brand_kit()), headers=headers)
    assert fine.status_code == 201, fine.text


def test_label_weights_naming_a_version_twice_are_refused(client: TestClient, keys: Keys) -> None:
    """The tester's own case, on the route it was found on: nothing moves."""
    headers = {**keys["A", "approver"], "Content-Type": "application/json"}
    got = client.put(
        "/v1/templates/brand-hero/labels/exp", content='{"weights": {"1": 1, "1": 2}}',
        headers=headers,
    )  # fmt: skip
    body = assert_problem(got, 422, "validation")
    assert body["errors"][0]["loc"] == ["body", "weights", "1"]


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_a_body_nested_too_deep_is_422_not_a_500(
    client: TestClient, keys: Keys, depth: int
) -> None:
    """A thousand nested lists raised a RecursionError in the guard's walk: a 500 on any route,
    for any caller (an outside tester)."""
    deep = "[" * depth + "]" * depth
    headers = {**keys["A", "creator"], "Content-Type": "application/json"}
    for body in (deep, '{"brief": "a cup", "brand": "Acme Coffee", "providers": ' + deep + "}"):
        got = client.post("/v1/generations", content=body, headers=headers)
        assert "nested more than 32 levels" in assert_problem(got, 422, "validation")["detail"]
    assert client.get("/v1/jobs", headers=keys["A", "viewer"]).json() == []
    # 32 levels are the route's to judge (a 422 of its own: not a list of providers)
    fine = "[" * 31 + "]" * 31
    got = client.post(
        "/v1/generations",
        content='{"brief": "a cup", "brand": "Acme Coffee", "providers": ' + fine + "}",
        headers=headers,
    )
    assert "nested" not in assert_problem(got, 422, "validation")["detail"]


def test_a_body_that_is_not_utf8_is_422_like_other_bad_json(client: TestClient, keys: Keys) -> None:
    """It was a 400 "There was an error parsing the body" where truncated JSON is a 422
    (docs/http-api.md: validation, 422, bad JSON) - an outside tester's Latin-1 brief."""
    headers = {**keys["A", "creator"], "Content-Type": "application/json"}
    got = client.post(
        "/v1/generations", content=b'{"brief":"caf\xe9 cup","brand":"Acme Coffee"}',
        headers=headers,
    )  # fmt: skip
    assert "not UTF-8" in assert_problem(got, 422, "validation")["detail"]
    assert client.get("/v1/jobs", headers=keys["A", "viewer"]).json() == []
