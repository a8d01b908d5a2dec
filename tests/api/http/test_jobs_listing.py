"""``GET /v1/jobs`` lists newest first, as runs, campaigns and threads are listed, and pages on
with ``offset`` (an outside tester's report: it listed oldest first and ignored ``offset``, so a
tenant past 500 jobs could not list its new ones)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem


def test_jobs_are_listed_newest_first_and_page_with_offset(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    creator = keys["A", "creator"]
    made = []
    for i in range(4):
        sent = client.post(
            "/v1/generations",
            json={"brand": "Acme Coffee", "brief": f"a cup, take {i}", "seed": i + 1},
            headers=creator,
        )
        assert sent.status_code == 202, sent.text
        made.append(sent.json()["id"])
    newest_first = list(reversed(made))

    def listed(query: str) -> list[str]:
        answer = client.get(f"/v1/jobs{query}", headers=keys["A", "viewer"])
        assert answer.status_code == 200, answer.text
        return [job["id"] for job in answer.json()]

    assert listed("") == newest_first
    assert listed("?limit=2") == newest_first[:2]
    assert listed("?limit=2&offset=2") == newest_first[2:]
    assert listed("?offset=4") == []
    assert listed("?limit=1&offset=1") == [newest_first[1]]
    for bad in ("?offset=-1", "?offset=%D9%A1", "?offset=1.5"):
        assert_problem(client.get(f"/v1/jobs{bad}", headers=creator), 422, "validation")
