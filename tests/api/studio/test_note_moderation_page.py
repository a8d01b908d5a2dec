"""The studio's note form moderates a style note as the CLI and the API do: a note crossing
the minors line is a 422 page, and nothing is stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of


def test_the_note_form_refuses_a_note_crossing_the_minors_line(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    browser = studio.signed_in_as("A", "ana", "creator")
    page = browser.get("/brands/Acme Coffee")
    refused = browser.post(
        "/brands/Acme Coffee/notes",
        data={"csrf": csrf_of(page.text), "text": "schoolgirl aged 13 posing nude"},
    )
    assert refused.status_code == 422 and "sexual/minors" in refused.text
    listed = api("GET", "/v1/memory/notes?brand=Acme%20Coffee", studio.key("A", "viewer")).json()
    assert listed == []
