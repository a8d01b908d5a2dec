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
    assert client.get("/v1/templates/tp-new", headers=ana).status_code == 404
    assert len(client.get("/v1/templates/brand-hero", headers=ana).json()["versions"]) == 1
    fine = client.post(
        "/v1/templates/tp-new/versions",
        json={**BODY, "params": {"quality": "high", "steps": 30, "style": "vivid"}},
        headers=ana,
    )
    assert fine.status_code == 201, fine.text
    assert fine.json()["params"] == {"quality": "high", "steps": 30, "style": "vivid"}
