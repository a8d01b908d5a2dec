"""A draft made on a template's page edits the latest version: it keeps that version's params,
model hints and metadata (the form shows them), takes a negative body as long as the API and
CLI store, and an approver who wrote a version is shown why they cannot decide it, not offered
a button that answers 409 (outside tester, session 35)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from brandloop.templates.governance import TemplateMetadata, TemplateSpec, new_version
from brandloop.templates.sandbox import MAX_TEMPLATE_CHARS
from brandloop.tools.moderation.minors import template_screen
from tests.api.studio.conftest import Studio, csrf_of

V3 = {
    "body": "{{ brief }}, product on seamless white, {{ palette_clause }}",
    "negative_body": "people, text",
    "params": {"style_preset": "photographic", "quality": "high"},
    "model_hints": ["procedural/studio"],
    "metadata": {"domain": "e-commerce", "tone": "clean"},
    "message": "v3 through the API",
}


def _product_still_v3(studio: Studio, api: Callable[..., Any]) -> None:
    """product-still v1 to v3 through the API, v3 with params, hints and metadata."""
    key = studio.key("A", "creator")
    for body in ({"body": "{{ brief }}"}, {"body": "{{ brief }}", "message": "v2"}, V3):
        made = api("POST", "/v1/templates/product-still/versions", key, json=body)
        assert made.status_code == 201, made.text


def _version(
    api: Callable[..., Any], key: str, number: int, name: str = "product-still"
) -> dict[str, Any]:
    got = api("GET", f"/v1/templates/{name}", key)
    assert got.status_code == 200, got.text
    found: dict[str, Any] = next(v for v in got.json()["versions"] if v["version"] == number)
    return found


def test_a_studio_draft_keeps_the_latest_versions_params_hints_and_metadata(
    studio: Studio, api: Callable[..., Any]
) -> None:
    _product_still_v3(studio, api)
    ana = studio.signed_in_as("A", "ana", "creator")
    page = ana.get("/templates/product-still").text
    # the form says what the draft keeps besides the bodies it shows
    assert "Kept from v3" in page
    assert "quality=high, style_preset=photographic" in page
    assert "procedural/studio" in page and "domain: e-commerce" in page
    added = ana.post(
        "/templates/product-still/versions",
        data={"csrf": csrf_of(page), "body": "{{ brief }}, on white", "message": "shorter"},
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text
    v4 = _version(api, studio.key("A", "viewer"), 4)
    assert v4["body"] == "{{ brief }}, on white" and v4["message"] == "shorter"
    assert v4["params"] == V3["params"]
    assert v4["model_hints"] == V3["model_hints"]
    assert v4["metadata"] == {"domain": "e-commerce", "tone": "clean", "safety_notes": ""}


def test_a_draft_of_a_shipped_template_not_seeded_yet_keeps_its_version_1s(
    studio: Studio, api: Callable[..., Any]
) -> None:
    """brand-hero's version 1 is the shipped file, seeded on first use: here by the draft."""
    ana = studio.signed_in_as("A", "ana", "creator")
    token = csrf_of(ana.get("/brands").text)  # no page of the templates seeds it first
    added = ana.post(
        "/templates/brand-hero/versions",
        data={"csrf": token, "body": "{{ brief }}", "message": "plain"},
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text
    v1, v2 = (
        _version(api, studio.key("A", "viewer"), 1, "brand-hero"),
        _version(api, studio.key("A", "viewer"), 2, "brand-hero"),
    )
    assert v1["metadata"]["domain"] == "marketing"
    assert v2["metadata"] == v1["metadata"]


def test_metadata_a_template_file_added_is_kept_whole(
    studio: Studio, api: Callable[..., Any]
) -> None:
    """A file may give metadata keys the API's schema does not name; the next draft keeps
    them, as the next version from the file would."""
    _product_still_v3(studio, api)
    spec = TemplateSpec(
        body="{{ brief }}",
        params={"steps": 30},
        metadata=TemplateMetadata(domain="retail", audience="shoppers"),
    )
    with studio.db.session() as session:
        new_version(
            session, tenant="A", name="product-still", spec=spec, actor="cli",
            message="from a file", screen=template_screen, models=["procedural/studio"],
        )  # fmt: skip
        session.commit()
    ana = studio.signed_in_as("A", "ana", "creator")
    page = ana.get("/templates/product-still").text
    assert "Kept from v4" in page and "audience: shoppers" in page
    added = ana.post(
        "/templates/product-still/versions",
        data={"csrf": csrf_of(page), "body": "{{ brief }}!", "message": "louder"},
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text
    v5 = _version(api, studio.key("A", "viewer"), 5)
    assert v5["params"] == {"steps": 30}
    assert v5["metadata"] == {
        "domain": "retail",
        "tone": "",
        "safety_notes": "",
        "audience": "shoppers",
    }


def test_a_studio_draft_takes_a_negative_body_as_long_as_the_api_stores(
    studio: Studio, api: Callable[..., Any]
) -> None:
    _product_still_v3(studio, api)
    ana = studio.signed_in_as("A", "ana", "creator")
    page = ana.get("/templates/product-still").text
    assert f'name="negative_body" maxlength="{MAX_TEMPLATE_CHARS}"' in page
    negative = ("blurry, " * MAX_TEMPLATE_CHARS)[:MAX_TEMPLATE_CHARS].strip()
    added = ana.post(
        "/templates/product-still/versions",
        data={"csrf": csrf_of(page), "body": "{{ brief }}", "negative_body": negative},
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text[-600:]
    assert _version(api, studio.key("A", "viewer"), 4)["negative_body"] == negative
    # one past the engine's limit is the form again, naming the field
    refused = ana.post(
        "/templates/product-still/versions",
        data={"csrf": csrf_of(page), "body": "{{ brief }}", "negative_body": "x" * 8001},
    )
    assert refused.status_code == 422 and "Negative body" in refused.text


def _decision_buttons(html: str, version: int) -> list[dict[str, str]]:
    """The page's Approve/Reject buttons for ``version``, with their attributes."""
    buttons = re.findall(rf"<button([^>]*)>(Approve|Reject) v{version}</button>", html)
    return [
        {**dict(re.findall(r'([a-z-]+)(?:="([^"]*)")?', attrs)), "text": text}
        for attrs, text in buttons
    ]


def test_the_author_of_a_version_in_review_is_shown_why_they_cannot_decide_it(
    studio: Studio,
) -> None:
    ana = studio.signed_in_as("A", "ana", "approver")
    page = ana.get("/templates/brand-hero").text
    added = ana.post(
        "/templates/brand-hero/versions",
        data={"csrf": csrf_of(page), "body": "{{ brief }}. crisp", "message": "crisp"},
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text
    mine = ana.post("/templates/brand-hero/versions/2/submit", data={"csrf": csrf_of(page)}).text
    buttons = _decision_buttons(mine, 2)
    assert [b["text"] for b in buttons] == ["Approve", "Reject"], buttons
    assert all("disabled" in b and b["aria-describedby"] == "four-eyes-2" for b in buttons)
    assert 'id="four-eyes-2">Four eyes: you wrote v2' in mine
    assert "/versions/2/review" not in mine  # no form that would answer 409
    # the same person under another case of their name
    assert (
        "four-eyes-2"
        in studio.signed_in_as("A", "ANA", "approver").get("/templates/brand-hero").text
    )
    # the server still refuses it
    own = ana.post(
        "/templates/brand-hero/versions/2/review",
        data={"csrf": csrf_of(mine), "decision": "approve"},
    )
    assert own.status_code == 409 and "ana wrote brand-hero@2" in own.text
    # another approver is offered both, enabled
    theirs = studio.signed_in_as("A", "lee", "approver").get("/templates/brand-hero").text
    buttons = _decision_buttons(theirs, 2)
    assert [b["text"] for b in buttons] == ["Approve", "Reject"], buttons
    assert not any("disabled" in b for b in buttons) and "four-eyes" not in theirs
    assert theirs.count('action="/templates/brand-hero/versions/2/review"') == 2
