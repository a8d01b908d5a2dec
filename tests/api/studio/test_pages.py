"""The other pages: Templates (versions, side-by-side diff, labels, stats, governance), Campaigns,
Brands (kit, style notes added and forgotten, scoring policy), Evals (result sets, report, A/B)
and Costs; each a 404 page for another tenant's things."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from brandloop.agent.runner import open_memory
from brandloop.registry import crud
from brandloop.templates.governance import reviews
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


class _Forms(HTMLParser):
    """Each ``<form>`` of a page: its action, its fields (name → attributes) and its labels
    (``for`` → text), as a browser would submit and announce them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._label: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": found.get("action", ""), "fields": {}, "labels": {}})
        elif tag in ("input", "textarea", "select") and self.forms and "name" in found:
            self.forms[-1]["fields"][found["name"]] = found
        elif tag == "label" and self.forms:
            self._label = found.get("for", "")
            self.forms[-1]["labels"][self._label] = ""

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self.forms[-1]["labels"][self._label] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label = None


def reject_form(html: str, version: int) -> dict[str, Any]:
    parser = _Forms()
    parser.feed(html)
    forms = [
        f
        for f in parser.forms
        if f["action"].endswith(f"/versions/{version}/review")
        and f["fields"].get("decision", {}).get("value") == "reject"
    ]
    assert len(forms) == 1, parser.forms
    return forms[0]


def test_a_reviewer_rejects_a_template_version_with_the_forms_reason(studio: Studio) -> None:
    """The Reject form itself asks why (a labelled, required field), and what it posts rejects
    the version; a blank reason is a readable 422 page that names the field, not a CLI flag."""
    ana = studio.signed_in_as("A", "ana", "creator")
    page = ana.get("/templates/brand-hero").text
    added = ana.post(
        "/templates/brand-hero/versions",
        data={"csrf": csrf_of(page), "body": "{{ brief }}. {{ palette_clause }}. neon",
              "message": "louder"},
        follow_redirects=False,
    )  # fmt: skip
    assert added.status_code == 303
    page = ana.get("/templates/brand-hero").text
    assert (
        ana.post(
            "/templates/brand-hero/versions/2/submit", data={"csrf": csrf_of(page)}
        ).status_code
        == 200
    )
    lee = studio.signed_in_as("A", "lee", "approver")
    page = lee.get("/templates/brand-hero").text
    form = reject_form(page, 2)
    note = form["fields"].get("note")
    assert note is not None, form  # the old form sent only csrf and decision
    assert "required" in note and form["labels"].get(note["id"]) == "Why reject v2?"
    posted = {name: attrs.get("value", "") for name, attrs in form["fields"].items()}
    for blank in ("", "   "):
        refused = lee.post(form["action"], data={**posted, "note": blank})
        assert refused.status_code == 422, refused.text
        assert "Why reject v2?" in refused.text and "--note" not in refused.text
        assert 'role="alert"' in refused.text
    page = lee.get("/templates/brand-hero").text
    assert "status-in_review" in page  # nothing changed
    rejected = lee.post(form["action"], data={**posted, "note": "neon is off-brand"})
    assert rejected.status_code == 200, rejected.text
    assert "status-rejected" in rejected.text
    assert "Reject v2" not in rejected.text
    with studio.db.session() as session:
        template = crud.get_template(session, tenant="A", name="brand-hero")
        assert template is not None
        done = [(r.actor, r.action, r.note) for r in reviews(session, template=template, version=2)]
    assert done[-1] == ("lee", "reject", "neon is off-brand")


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
    # two cases are too few to tell a difference: not measured, never "no detectable difference"
    assert "<strong>not measured</strong>" in result.text, result.text
    assert "no detectable difference" not in result.text
    assert "Not measured: fewer than 6 cases have the metric for both targets" in result.text
    report = browser.get(f"/evals/{name}/report")
    assert report.status_code == 200 and "<script" not in report.text
    assert "script-src" not in report.headers["content-security-policy"]
    assert "default-src 'none'" in report.headers["content-security-policy"]
    other = studio.signed_in_as("B", "bob", "admin")
    assert name not in other.get("/evals").text
    assert other.get(f"/evals/{name}").status_code == 404


def test_a_result_set_run_from_a_relative_suite_path_opens_from_any_directory(
    studio: Studio,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.api.test_cli import run_cli

    cli_dir, server_dir = tmp_path / "cli", tmp_path / "server"
    cli_dir.mkdir()
    server_dir.mkdir()
    suite = {
        "name": "small",
        "version": 1,
        "brands": [str(ROOT / "examples" / "brands" / "acme-coffee.yaml")],
        "gate": {"min_pass_rate": 0.0},
        "defaults": {"request": {"size": "128x128", "budget_usd": 0.3, "seed": 4}},
        "cases": [
            {"id": "cup", "brand": "Acme Coffee", "brief": "a steaming cup",
             "assertions": [{"kind": "max_cost", "max_usd": 1}]},
        ],
    }  # fmt: skip
    (cli_dir / "small.yaml").write_text(json.dumps(suite), encoding="utf-8")
    monkeypatch.chdir(cli_dir)
    code, _, err = run_cli(capsys, "eval", "run", "small.yaml")  # as the docs write it
    assert code == 0, err
    monkeypatch.chdir(server_dir)  # the server runs elsewhere
    browser = studio.signed_in_as("default", "ana", "viewer")
    name = re.search(r'href="/evals/(small-[\w.=-]+)"', browser.get("/evals").text).group(1)  # type: ignore[union-attr]
    manifest_path = studio.settings.data_dir / "evals" / name / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    result = browser.get(f"/evals/{name}")
    assert result.status_code == 200 and "small v1 · 1 execution(s)" in result.text, result.text
    report = browser.get(f"/evals/{name}/report")
    assert report.status_code == 200 and "<script" not in report.text
    assert manifest["suite_path"] == str(cli_dir / "small.yaml")

    # a set an older release stored with the path as given (and no copy of its suite): a
    # message that says what to do
    manifest_path.write_text(json.dumps({**manifest, "suite_path": "small.yaml"}))
    (manifest_path.parent / "suite.json").unlink()
    for url in (f"/evals/{name}", f"/evals/{name}/report"):
        page = browser.get(url)
        assert page.status_code == 409, (url, page.status_code)
        assert "relative path small.yaml" in page.text and "absolute path" in page.text
    monkeypatch.chdir(cli_dir)  # where it ran: the same suite (its fingerprint) is taken
    assert browser.get(f"/evals/{name}").status_code == 200
    suite["cases"][0]["brief"] = "another suite by the same name"  # type: ignore[index]
    (cli_dir / "small.yaml").write_text(json.dumps(suite), encoding="utf-8")
    assert browser.get(f"/evals/{name}").status_code == 409


def test_a_target_with_no_results_is_not_measured_on_the_evals_pages(
    studio: Studio,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """A result set that stopped before one of its targets ran: that target's pass rate (and
    every other rate) is "not measured" on the set's page and in its report, never 0%."""
    import shutil

    from tests.api.test_cli import run_cli

    suite = {
        "name": "halfway",
        "version": 1,
        "brands": [str(ROOT / "examples" / "brands" / "acme-coffee.yaml")],
        "targets": [{"name": "draft", "model": "procedural/draft"},
                    {"name": "studio", "model": "procedural/studio"}],
        "defaults": {"request": {"size": "128x128", "budget_usd": 0.3, "seed": 4}},
        "cases": [
            {"id": "cup", "brand": "Acme Coffee", "brief": "a steaming cup",
             "assertions": [{"kind": "max_cost", "max_usd": 1}]},
        ],
    }  # fmt: skip
    path = tmp_path / "halfway.yaml"
    path.write_text(json.dumps(suite), encoding="utf-8")
    code, _, err = run_cli(capsys, "eval", "run", str(path))
    assert code == 0, err
    browser = studio.signed_in_as("default", "ana", "viewer")
    name = re.search(r'href="/evals/(halfway-[\w.=-]+)"', browser.get("/evals").text).group(1)  # type: ignore[union-attr]
    # as if the run had stopped before its second target ran
    shutil.rmtree(studio.settings.data_dir / "evals" / name / "cases" / "studio")
    page = browser.get(f"/evals/{name}")
    assert page.status_code == 200, page.text
    rows = {
        row.split("</td>", 1)[0]: row
        for row in re.findall(r"<tr><td>(.*?)</tr>", page.text, flags=re.S)
    }
    assert "100.0% (1/1)" in rows["draft"] and "pass" in rows["draft"], rows
    empty = rows["studio"]
    assert "not measured (0/0)" in empty and "0%" not in empty, empty
    assert "FAIL" not in empty and ">pass<" not in empty, empty
    report = browser.get(f"/evals/{name}/report")
    assert report.status_code == 200
    assert "not measured (0/0)" in report.text and "0.0% (0/0)" not in report.text


class _TableScrollers(HTMLParser):
    """Counts tables, and those inside a ``.table-wrap`` (the horizontal scroller)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []
        self.tables = self.wrapped = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "div":
            self.stack.append("table-wrap" in (dict(attrs).get("class") or "").split())
        elif tag == "table":
            self.tables += 1
            self.wrapped += any(self.stack)

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self.stack:
            self.stack.pop()


def test_tables_scroll_inside_their_wrapper_not_the_page_at_375px(
    studio: Studio, api: Callable[..., Any]
) -> None:
    """A wide table scrolls in its own region; the region holds its .sr-only spans (positioned
    absolutely, they would escape it and widen the page)."""
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    browser = studio.signed_in_as("A", "lee", "approver")
    for path in ("/templates", "/agreement", "/evals"):
        page = browser.get(path)
        assert page.status_code == 200, path
        found = _TableScrollers()
        found.feed(page.text)
        assert found.tables and found.wrapped == found.tables, (path, found.tables, found.wrapped)
    css = browser.get("/static/studio.css").text
    rule = re.search(r"\.table-wrap\s*\{([^}]*)\}", css)
    assert rule and "overflow-x: auto" in rule.group(1) and "position: relative" in rule.group(1)
