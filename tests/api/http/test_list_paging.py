"""Threads and campaigns are listed in pages, newest first: ``offset`` pages on (docs/http-api.md,
"the list newest first (as runs, campaigns and threads), offset to page on"); an outside tester
found it ignored on both, so only the newest 200 threads and 100 campaigns could be listed."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem, brand_kit

MADE = 7


def _pages(client: TestClient, path: str, headers: dict[str, str]) -> list[str]:
    ids: list[str] = []
    for offset in range(0, MADE + 3, 3):
        page = client.get(f"{path}?limit=3&offset={offset}", headers=headers)
        assert page.status_code == 200, page.text
        ids += [item["id"] for item in page.json()]
    return ids


def test_threads_and_campaigns_page_on_with_offset(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    client = make_client(workers=0)  # nothing runs: listing is all this needs
    assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
    creator, viewer = keys["A", "creator"], keys["A", "viewer"]
    threads, campaigns = [], []
    for i in range(MADE):
        made = client.post(
            "/v1/threads",
            json={"brand": "Acme Coffee", "title": f"t{i}", "message": f"a cup {i}"},
            headers=creator,
        )
        assert made.status_code == 201, made.text
        threads.append(made.json()["id"])
        made = client.post(
            "/v1/campaigns",
            json={"brand": "Acme Coffee", "name": f"c{i}", "budget_usd": 1,
                  "assets": [{"brief": f"a cup {i}"}]},
            headers=creator,
        )  # fmt: skip
        assert made.status_code == 202, made.text
        campaigns.append(made.json()["id"])
    for path, made_ids in (("/v1/threads", threads), ("/v1/campaigns", campaigns)):
        listed = _pages(client, path, viewer)
        assert listed == made_ids[::-1], (path, listed)  # each once, newest first
        for bad in ("-1", "x", "1.5", "١"):
            assert_problem(client.get(f"{path}?offset={bad}", headers=viewer), 422, "validation")
