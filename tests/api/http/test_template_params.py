"""A template version's params are checked when it is added over HTTP, on both databases:
a field brandloop sets itself, or a value that is not text, a number or true/false, is a
422 problem naming the key, and nothing is stored (docs/templates.md)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem, both_databases

settings = pytest.fixture(name="settings")(both_databases)

BODY = {"body": "{{ brief }}. {{ palette_clause }}"}
#: an OpenAI-shaped key nobody configured here: found by its shape
SECRET = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"seed": 3}, "params: 'seed' is set by brandloop itself"),
        ({"steps": 30, "size": "512x512"}, "params: 'size' is set by brandloop itself"),
        (
            {"lora": {"name": "x"}},
            "params.lora: must be text, a number or true/false, not a mapping",
        ),
        ({"steps": None}, "params.steps: must be text, a number or true/false, not null"),
        # names are words, reserved ones in any case, text bounded (outside tester)
        ({"a b\n": 2}, "params: 'a b\\n' is not a param name"),
        ({"k" * 5000: 1}, "is not a param name: 1-64 of"),
        ({"Seed": 3}, "params: 'Seed' is set by brandloop itself"),
        ({"style": "x" * 300_000}, "params.style: the text is 300,000 characters long"),
        # a key-shaped name or value: named, never echoed (it reached receipts and PNGs)
        ({"api_key": SECRET}, "params.api_key: the value looks like an API key"),
        ({SECRET: 1}, "params: the name of param #1 (in file order) looks like an API key"),
    ],
)
def test_params_a_call_cannot_take_are_a_422(
    client: TestClient, keys: Keys, params: dict[str, Any], detail: str
) -> None:
    ana = keys.of("A", "ana", "creator")
    for name in ("tp-new", "brand-hero"):  # a new template's first version, a later version
        answer = client.post(
            f"/v1/templates/{name}/versions", json={**BODY, "params": params}, headers=ana
        )
        problem = assert_problem(answer, 422, "bad-input")
        assert detail in problem["detail"], problem
        assert "AbCdEf" not in answer.text, "a secret is never echoed"
    assert client.get("/v1/templates/tp-new", headers=ana).status_code == 404
    assert len(client.get("/v1/templates/brand-hero", headers=ana).json()["versions"]) == 1
    fine = client.post(
        "/v1/templates/tp-new/versions",
        json={**BODY, "params": {"quality": "high", "steps": 30, "style": "vivid"}},
        headers=ana,
    )
    assert fine.status_code == 201, fine.text
    assert fine.json()["params"] == {"quality": "high", "steps": 30, "style": "vivid"}


def test_a_model_hint_listed_twice_is_a_422_naming_it(client: TestClient, keys: Keys) -> None:
    ana = keys.of("A", "ana", "creator")
    hints = ["procedural/studio", "procedural/studio"]
    answer = client.post(
        "/v1/templates/tp-new/versions", json={**BODY, "model_hints": hints}, headers=ana
    )
    problem = assert_problem(answer, 422, "bad-input")
    assert problem["detail"] == "model_hints lists procedural/studio twice; list each model once"
    assert client.get("/v1/templates/tp-new", headers=ana).status_code == 404


@pytest.mark.parametrize("weight", ['"1e3"', '"1000"', '"0x10"', '"1_000"', '"inf"', "Infinity"])
def test_a_label_weight_is_a_json_number_and_finite(
    client: TestClient, keys: Keys, weight: str
) -> None:
    """Over HTTP a weight is a JSON number (the CLI's ``1e3`` is refused, outside tester): text
    or a non-finite token is a 422 and the label is not moved."""
    lee = keys.of("A", "lee", "approver")
    client.get("/v1/templates", headers=lee)  # the shipped templates, seeded
    answer = client.put(
        "/v1/templates/brand-hero/labels/staging",
        content='{"weights": {"1": ' + weight + "}}",
        headers={**lee, "content-type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    assert "staging" not in client.get("/v1/templates/brand-hero", headers=lee).json()["labels"]
