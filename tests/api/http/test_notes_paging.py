"""A brand's style notes are all listed - every one its runs recall - through the API in pages
(``limit``, ``offset``) and on the studio's brand page, where each can be forgotten; an outside
tester's 110 notes showed only the newest 100 in both, the rest out of reach. The studio's
page: ``tests/api/studio/test_notes_page.py``."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem, brand_kit

NOTES = 110


def _noted(client: TestClient, keys: Keys) -> list[str]:
    assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
    ids = []
    for i in range(NOTES):
        made = client.post(
            "/v1/memory/notes",
            json={"brand": "Acme Coffee", "text": f"style rule number {i:03d}"},
            headers=keys["A", "creator"],
        )
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    return ids


def test_notes_are_listed_in_pages_newest_first(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    client = make_client(use_memory=True)
    ids = _noted(client, keys)
    viewer = keys["A", "viewer"]

    def page(**params: object) -> list[dict]:
        got = client.get("/v1/memory/notes", params={"brand": "Acme Coffee", **params},
                         headers=viewer)  # fmt: skip
        assert got.status_code == 200, got.text
        return list(got.json())

    first, rest = page(), page(offset=100)
    assert len(first) == 100 and len(rest) == NOTES - 100
    listed = [n["id"] for n in first + rest]
    assert sorted(listed) == sorted(ids) and len(set(listed)) == NOTES
    assert [n["id"] for n in page(limit=1000)] == listed
    assert [n["text"] for n in page(limit=2)] == ["style rule number 109", "style rule number 108"]
    assert page(offset=NOTES) == []
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "٣"}, {"limit": "1e2"}):
        got = client.get("/v1/memory/notes", params={"brand": "Acme Coffee", **bad},
                         headers=viewer)  # fmt: skip
        assert_problem(got, 422, "validation")
