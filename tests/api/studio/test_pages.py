"""The other pages: Templates (versions, side-by-side diff, labels, stats, governance), Campaigns,
Brands (kit, style notes added and forgotten, scoring policy), Evals (result sets, report, A/B)
and Costs; each a 404 page for another tenant's things."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from brandloop.agent.runner import open_memory
from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of

ROOT = Path(__file__).resolve().parents[3]


def test_compare_two_template_versions_then_approve_with_a_second_principal(
    studio: Studio,
) -> None:
    ana = studio.signed_in_as("A", "ana", "approver")
    page = ana.get("/templates/brand-hero")
    assert page.status_code == 200 and "v1" in page.text
    added = ana.post(
        "/templates/brand-hero/versions",
        data={"csrf": csrf_of(page.text), "body": "{{ brief }}. {{ palette_clause }}. crisp",
              "message": "shorter"},
        follow_redirects=False,
    )  # fmt: skip
    assert added.status_code == 303
    page = ana.get("/templates/brand-hero?a=1&b=2").text
    assert "<del>" in page and "<ins>" in page and "crisp" in page
    submitted = ana.post("/templates/brand-hero/versions/2/submit", data={"csrf": csrf_of(page)})
    assert submitted.status_code == 200 and "in review" in submitted.text
    own = ana.post(
        "/templates/brand-hero/versions/2/review",
        data={"csrf": csrf_of(submitted.text), "decision": "approve"},
    )
    assert own.status_code == 409 and "ana" in own.text  # the author is refused
    lee = studio.signed_in_as("A", "lee", "approver")
    page = lee.get("/templates/brand-hero").text
    approved = lee.post(
        "/templates/brand-hero/versions/2/review",
        data={"csrf": csrf_of(page), "decision": "approve", "note": "ok"},
    )
    assert approved.status_code == 200 and "status-approved" in approved.text
    split = lee.post(
        "/templates/brand-hero/labels",
        data={"csrf": csrf_of(approved.text), "label": "canary", "weights": "1=90,2=10"},
    )
    assert split.status_code == 200 and "v1: 90%" in split.text and "v2: 10%" in split.text
    # the list shows the split too, not one of its versions (outside tester, defect 3)
    listing = lee.get("/templates").text
    assert "canary → v1 90% · v2 10%, production → v1<" in listing, listing
    bad = lee.post(
        "/templates/brand-hero/labels",
        data={"csrf": csrf_of(split.text), "label": "canary", "weights": "two"},
    )
    assert bad.status_code == 422
    # what the API's schema refuses (a weight past 1,000,000) is a 422 page, not a 500
    huge = lee.post(
        "/templates/brand-hero/labels",
        data={"csrf": csrf_of(split.text), "label": "canary", "weights": "1=10000000"},
    )
    assert huge.status_code == 422, huge.text
    b = studio.signed_in_as("B", "bob", "admin")
    assert "crisp" not in b.get("/templates/brand-hero?a=1&b=1").text
    assert b.get("/templates/brand-hero?a=1&b=2").status_code == 404


def test_campaigns_board_and_costs(studio: Studio, api: Callable[..., Any]) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    made = api(
        "POST",
        "/v1/campaigns",
        studio.key("A", "creator"),
        json={"name": "autumn <sale>", "brand": "Acme Coffee", "budget_usd": 0.2,
              "assets": [{"brief": "a cup", "formats": ["128x128", "1:1"]}]},
    ).json()  # fmt: skip
    browser = studio.signed_in_as("A", "ana", "viewer")
    board = browser.get("/campaigns").text
    assert "autumn &lt;sale&gt;" in board and "<meter" in board
    page = browser.get(f"/campaigns/{made['id']}")
    assert page.status_code == 200 and "128x128" in page.text and "1:1" in page.text
    single = api(
        "POST",
        "/v1/campaigns",
        studio.key("A", "creator"),
        json={"name": "single", "brand": "Acme Coffee", "budget_usd": 0.2,
              "assets": [{"brief": "a cup", "formats": ["128x128"]}]},
    ).json()  # fmt: skip
    for _ in range(600):
        shown = api("GET", f"/v1/campaigns/{single['id']}", studio.key("A", "viewer")).json()
        if shown["state"] == "done":
            break
        time.sleep(0.1)
    assert shown["consistency"]["images"] == 1, shown
    page = browser.get(f"/campaigns/{single['id']}")  # one image: no spread, and no 500
    assert page.status_code == 200 and "not measured" in page.text, page.text
    assert "not measured" in browser.get("/campaigns").text
    costs = browser.get("/costs?period=week")
    assert costs.status_code == 200 and "daily quota" in costs.text
    assert "<svg" in costs.text or "No spend" in costs.text
    b = studio.signed_in_as("B", "bob", "admin")
    assert b.get(f"/campaigns/{made['id']}").status_code == 404
    assert "autumn" not in b.get("/campaigns").text


def test_brand_page_notes_are_added_and_forgotten(studio: Studio, api: Callable[..., Any]) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    browser = studio.signed_in_as("A", "ana", "creator")
    page = browser.get("/brands/Acme Coffee")
    assert (
        page.status_code == 200 and 'fill="#0f766e"' in page.text and "Scoring policy" in page.text
    )
    added = browser.post(
        "/brands/Acme Coffee/notes",
        data={"csrf": csrf_of(page.text), "text": "always a soft <b>morning</b> light"},
    )
    assert (
        added.status_code == 200 and "always a soft &lt;b&gt;morning&lt;/b&gt; light" in added.text
    )
    note_id = re.search(r'name="note_id" value="(note-[0-9a-f]{32})"', added.text).group(1)  # type: ignore[union-attr]
    listed = api("GET", "/v1/memory/notes?brand=Acme%20Coffee", studio.key("A", "viewer")).json()
    assert [n["id"] for n in listed] == [note_id]
    # kept where a run's recall looks: under the brand's registry id
    brand_id = api("GET", "/v1/brands", studio.key("A", "viewer")).json()[0]["id"]
    recalled = open_memory(studio.settings).recall(
        tenant="A", brand=brand_id, query="morning light", k=5
    )
    assert [hit.id for hit in recalled] == [note_id]
    gone = browser.post(
        "/brands/Acme Coffee/notes/forget", data={"csrf": csrf_of(added.text), "note_id": note_id}
    )
    assert gone.status_code == 200 and "No style notes yet." in gone.text
    b = studio.signed_in_as("B", "bob", "admin")
    assert b.get("/brands/Acme Coffee").status_code == 404


@pytest.mark.slow
def test_evals_page_shows_result_sets_reports_and_ab_verdicts(
    studio: Studio, api: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.api.test_cli import run_cli

    suite = ROOT / "tests" / "api" / "studio" / "ab_suite.yaml"
    code, _, err = run_cli(capsys, "eval", "run", str(suite))
    assert code in (0, 1), err
    browser = studio.signed_in_as("default", "ana", "viewer")
    page = browser.get("/evals").text
    name = re.search(r'href="/evals/([\w.=-]+)"', page).group(1)  # type: ignore[union-attr]
    result = browser.get(f"/evals/{name}")
    assert result.status_code == 200 and "A/B verdicts" in result.text and "95% CI" in result.text
    report = browser.get(f"/evals/{name}/report")
    assert report.status_code == 200 and "<script" not in report.text
    assert "script-src" not in report.headers["content-security-policy"]
    assert "default-src 'none'" in report.headers["content-security-policy"]
    other = studio.signed_in_as("B", "bob", "admin")
    assert name not in other.get("/evals").text
    assert other.get(f"/evals/{name}").status_code == 404
