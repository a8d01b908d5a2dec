"""``POST /v1/threads`` without a ``message`` takes no shape (count, size, budget...): they
are the first turn's, and an outside tester's ``{"brand": ..., "count": 3, "budget_usd": 2}``
was a 201 that kept neither. It is a 422 naming them, with nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem, wait_job


@pytest.mark.parametrize(
    ("shape", "named"),
    [
        ({"count": 3}, "count is"),
        ({"size": "512x512"}, "size is"),
        ({"aspect_ratio": "16:9"}, "aspect_ratio is"),
        ({"seed": 4}, "seed is"),
        ({"output_format": "png"}, "output_format is"),
        ({"count": 3, "size": "512x512", "budget_usd": 2}, "budget_usd, count, size are"),
        ({"aspect_ratio": None, "message": None}, "aspect_ratio is"),
    ],
)
def test_a_shape_without_a_message_is_a_422_and_stores_no_thread(
    client: TestClient, keys: Keys, acme: dict[str, Any], shape: dict[str, Any], named: str
) -> None:
    creator = keys["A", "creator"]
    sent = client.post("/v1/threads", json={"brand": "Acme Coffee", **shape}, headers=creator)
    problem = assert_problem(sent, 422, "validation")
    assert named in problem["detail"] and "`message`" in problem["detail"], problem
    assert client.get("/v1/threads", headers=creator).json() == []


def test_a_thread_without_a_message_or_shape_is_made_and_one_with_both_keeps_the_shape(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    creator = keys["A", "creator"]
    empty = client.post("/v1/threads", json={"brand": "Acme Coffee", "title": "t"}, headers=creator)
    assert empty.status_code == 201, empty.text
    assert empty.json()["messages"] == []
    body = {"brand": "Acme Coffee", "message": "a cup", "count": 2, "size": "64x64"}
    made = client.post("/v1/threads", json=body, headers=creator)
    assert made.status_code == 201, made.text
    job = wait_job(client, made.json()["messages"][0]["job"]["id"], creator)
    run = client.get(f"/v1/runs/{job['run_id']}", headers=creator).json()
    assert (run["request"]["count"], run["request"]["size"]) == (2, "64x64"), run["request"]
