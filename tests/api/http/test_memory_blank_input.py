"""A blank style note or search query over HTTP is a 422 problem in the CLI's words (``note is
empty``, ``query is empty``), not a regex of invisible characters; a note's ``brand`` is the
brand's name over HTTP and on the CLI alike."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem, brand_kit
from tests.memory.test_memory_cli import cli


@pytest.mark.parametrize("blank", ["", "   ", "\u3000\u2028"])
def test_blank_note_and_query_say_so_in_plain_words(
    make_client: Callable[..., TestClient], keys: Keys, blank: str
) -> None:
    client = make_client(use_memory=True)
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    kept = client.post(
        "/v1/memory/notes",
        json={"brand": "Acme Coffee", "text": "always warm amber light"},
        headers=keys["A", "creator"],
    )
    assert kept.status_code == 201, kept.text
    note = client.post(
        "/v1/memory/notes",
        json={"brand": "Acme Coffee", "text": blank},
        headers=keys["A", "creator"],
    )
    body = assert_problem(note, 422, "validation")
    assert body["detail"] == "body.text: note is empty", body["detail"]
    search = client.get(
        "/v1/memory/search",
        params={"brand": "Acme Coffee", "q": blank},
        headers=keys["A", "viewer"],
    )
    body = assert_problem(search, 422, "validation")
    assert body["detail"] == "query.q: query is empty", body["detail"]
    # nothing stored was lost
    listed = client.get(
        "/v1/memory/notes", params={"brand": "Acme Coffee"}, headers=keys["A", "viewer"]
    ).json()
    assert [n["text"] for n in listed] == ["always warm amber light"]


def test_a_notes_brand_is_the_brands_name_on_both_surfaces(
    make_client: Callable[..., TestClient],
    keys: Keys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = make_client(use_memory=True)
    admin, creator = keys["default", "admin"], keys["default", "creator"]  # the CLI's tenant
    assert client.post("/v1/brands", json=brand_kit(), headers=admin).status_code == 201
    over_http = client.post(
        "/v1/memory/notes",
        json={"brand": "acme coffee", "text": "always warm amber light"},
        headers=creator,
    ).json()
    code, out, err = cli(capsys, "memory", "add", "never neon", "--brand", "acme coffee", "--json")
    assert code == 0, err
    # the CLI said "acme-coffee" (the slug), the API "Acme Coffee"
    assert json.loads(out)["brand"] == over_http["brand"] == "Acme Coffee"


def test_a_note_loses_characters_that_show_nothing_or_reorder_the_text(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    """Bidirectional overrides and zero-width characters in a note reached every later prompt
    as typed (outside tester): they are taken out (a zero-width space is a space), and a note
    of nothing else is empty."""
    client = make_client(use_memory=True)
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    creator = keys["A", "creator"]
    typed = "use\u200bteal \u202eevil\u202c \u2066light\u2069\ufeff"
    kept = client.post(
        "/v1/memory/notes", json={"brand": "Acme Coffee", "text": typed}, headers=creator
    )
    assert kept.status_code == 201, kept.text
    assert kept.json()["text"] == "use teal evil light"
    empty = client.post(
        "/v1/memory/notes",
        json={"brand": "Acme Coffee", "text": "\u202e\u200b\u202c"},
        headers=creator,
    )
    assert empty.status_code == 422 and "note is empty" in empty.json()["detail"], empty.text
    listed = client.get(
        "/v1/memory/notes", params={"brand": "Acme Coffee"}, headers=keys["A", "viewer"]
    ).json()
    assert [n["text"] for n in listed] == ["use teal evil light"]
