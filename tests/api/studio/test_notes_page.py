"""The studio's brand page lists every style note of the brand, each with its Forget button:
every note a run recalls can be seen and forgotten (an outside tester's 110 notes showed only
the newest 100)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio

NOTES = 110


def test_the_brand_page_lists_every_note_to_forget(studio: Studio, api: Callable[..., Any]) -> None:
    creator = studio.signed_in_as("A", "ana", "creator")
    admin, maker = studio.key("A", "admin"), studio.key("A", "creator")
    assert api("POST", "/v1/brands", admin, json=brand_kit()).is_success
    for i in range(NOTES):
        made = api("POST", "/v1/memory/notes", maker,
                   json={"brand": "Acme Coffee", "text": f"rule {i}"})  # fmt: skip
        assert made.status_code == 201, made.text
    page = creator.get("/brands/Acme Coffee")
    assert page.status_code == 200
    forms = re.findall(r'name="note_id" value="(note-[0-9a-f]{32})"', page.text)
    assert len(set(forms)) == NOTES
    assert ">rule 0<" in page.text  # the oldest too
