"""Bad input named for what it is: a request budget that is not a finite number says so (not
"should be less than or equal to 10000"), for a generation and a campaign alike."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/generations", '{"brief": "a cup", "brand": "Acme Coffee", "budget_usd": %s}'),
        (
            "/v1/campaigns",
            '{"brand": "Acme Coffee", "budget_usd": %s, "assets": [{"brief": "a cup"}]}',
        ),
    ],
)
def test_a_budget_that_is_not_a_finite_number_is_a_422_saying_so(
    client: TestClient, keys: Keys, acme: dict[str, Any], path: str, body: str, number: str
) -> None:
    answer = client.post(
        path,
        content=body % number,
        headers={**keys["A", "creator"], "content-type": "application/json"},
    )
    problem = assert_problem(answer, 422, "validation")
    assert "budget_usd" in answer.text and "finite number" in answer.text, problem
    assert "less than or equal" not in answer.text, problem
    assert client.get("/v1/jobs", headers=keys["A", "creator"]).json() == []
