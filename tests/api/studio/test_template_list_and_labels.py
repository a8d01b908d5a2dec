"""The Templates pages keep the API's rules and name who did what: the "Move label" form takes
the weights ``PUT /v1/templates/{name}/labels/{label}`` takes (0..1,000,000 each, at least one
above 0), and the list's "Latest" column names the approver of an approved version, not its
author (docs/studio.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.studio.conftest import Studio, csrf_of


def _approved_v2(studio: Studio) -> Any:
    """brand-hero v2 written by ana, approved by lee; lee's browser."""
    ana = studio.signed_in_as("A", "ana", "creator")
    page = ana.get("/templates/brand-hero").text
    added = ana.post(
        "/templates/brand-hero/versions",
        data={"csrf": csrf_of(page), "body": "{{ brief }}. {{ palette_clause }}. crisp"},
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text
    submitted = ana.post("/templates/brand-hero/versions/2/submit", data={"csrf": csrf_of(page)})
    assert submitted.status_code == 200, submitted.text[-400:]
    lee = studio.signed_in_as("A", "lee", "approver")
    approved = lee.post(
        "/templates/brand-hero/versions/2/review",
        data={"csrf": csrf_of(lee.get("/templates/brand-hero").text), "decision": "approve"},
    )
    assert approved.status_code == 200 and "status-approved" in approved.text
    return lee


def test_the_latest_column_names_the_approver_not_the_author(studio: Studio) -> None:
    lee = _approved_v2(studio)
    row = lee.get("/templates").text.split('href="/templates/brand-hero"', 1)[1].split("</tr>")[0]
    latest = row.rsplit("<td>", 1)[1]
    assert "approved</span> by <bdi>lee</bdi>" in latest, latest
    assert "approved</span> by <bdi>ana</bdi>" not in latest
    assert "written by <bdi>ana</bdi>" in latest


def test_move_label_takes_a_weight_of_0_as_the_api_does(
    studio: Studio, api: Callable[..., Any]
) -> None:
    lee = _approved_v2(studio)
    token = csrf_of(lee.get("/templates/brand-hero").text)
    moved = lee.post(
        "/templates/brand-hero/labels",
        data={"csrf": token, "label": "canary", "weights": "1=0,2=1"},
    )
    assert moved.status_code == 200, moved.text[-400:]
    key = studio.key("A", "viewer")
    assert api("GET", "/v1/templates/brand-hero", key).json()["label_weights"]["canary"] == {
        "1": 0.0,
        "2": 1.0,
    }
    by_api = api(
        "PUT",
        "/v1/templates/brand-hero/labels/canary",
        studio.key("A", "approver"),
        json={"weights": {"1": 0, "2": 1}},
    )
    assert by_api.status_code == 200, by_api.text
    # every weight 0 is refused by both, in words
    none = lee.post(
        "/templates/brand-hero/labels",
        data={"csrf": token, "label": "canary", "weights": "1=0,2=0"},
    )
    assert none.status_code == 422 and "above 0" in none.text, none.text[-400:]
    assert (
        api(
            "PUT",
            "/v1/templates/brand-hero/labels/canary",
            studio.key("A", "approver"),
            json={"weights": {"1": 0, "2": 0}},
        ).status_code
        == 422
    )
