"""A ``?brand=`` that names no brand of the tenant is a 404, as wherever a brand is named.

An outside tester found ``GET /v1/runs?brand=Аcme Coffee`` (a Cyrillic А) and an unknown name
answered 200 with an empty list on the runs list and the review agreement, while the memory
routes answered 404: a typo read as "no runs".
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem

PATHS = ["/v1/runs", "/v1/review/agreement"]


@pytest.mark.parametrize("path", PATHS)
def test_a_brand_filter_naming_no_brand_is_a_404(
    client: TestClient, keys: Keys, acme: dict[str, Any], path: str
) -> None:
    viewer = keys["A", "viewer"]
    for known in ("Acme Coffee", "acme-coffee", "ACME_COFFEE", acme["id"]):
        assert client.get(path, params={"brand": known}, headers=viewer).status_code == 200
    for unknown in ("Аcme Coffee", "nonexistent"):  # the first with a Cyrillic А
        answer = client.get(path, params={"brand": unknown}, headers=viewer)
        assert "unknown brand" in assert_problem(answer, 404, "not-found")["detail"]
    # another tenant's brand is as unknown as a missing one
    answer = client.get(path, params={"brand": "Acme Coffee"}, headers=keys["B", "viewer"])
    assert_problem(answer, 404, "not-found")
