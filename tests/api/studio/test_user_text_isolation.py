"""User text is isolated on every studio page that shows it (``<bdi>``, or ``dir="auto"`` on
the element holding it): a right-to-left override (U+202E) in a thread title, a brief, a
message or a template's message cannot reverse the studio's own labels around it."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of, make_run

RLO = "\u202e"
VOID = {"meta", "link", "input", "img", "br", "hr", "source", "col", "area", "base", "wbr"}


class _Spoofable(HTMLParser):
    """Each piece of text holding an override whose element does not isolate it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.bare: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append((tag, tag == "bdi" or ("dir", "auto") in attrs))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if RLO not in data:
            return
        tag, isolated = self.stack[-1] if self.stack else ("", False)
        if tag == "title":  # no element may go in a title: isolated by FSI ... PDI
            isolated = "\u2068" in data.split(RLO)[0] and "\u2069" in data.split(RLO)[-1]
        if tag in ("textarea", "option"):  # a form control's own value, shown as typed
            isolated = True
        if not isolated:
            self.bare.append(f"<{tag}> {data.strip()[:80]!r}")


def _bare(html: str) -> list[str]:
    parser = _Spoofable()
    parser.feed(html)
    return parser.bare


def test_user_text_with_a_right_to_left_override_is_isolated(
    studio: Studio, api: Callable[..., Any]
) -> None:
    run = make_run(studio, api, brief=f"a mug {RLO}on a table")
    ana = studio.signed_in_as("A", "ana", "creator")
    started = ana.post(
        "/chat",
        data={"csrf": csrf_of(ana.get("/chat").text), "brand": "Acme Coffee", "size": "256x256",
              "title": f"Launch {RLO}plan", "message": f"a cup {RLO}labelled"},
        follow_redirects=False,
    )  # fmt: skip
    assert started.status_code == 303, started.text[-400:]
    thread = started.headers["location"].split("?")[0].split("#")[0]
    page = ana.get("/templates/brand-hero").text
    added = ana.post(
        "/templates/brand-hero/versions",
        data={"csrf": csrf_of(page), "body": "{{ brief }}. {{ palette_clause }}. crisp",
              "message": f"shorter {RLO}one"},
        follow_redirects=False,
    )  # fmt: skip
    assert added.status_code == 303, added.text[-400:]
    for url in ("/chat", thread, f"/runs/{run['run_id']}", "/runs", "/templates/brand-hero"):
        html = ana.get(url).text
        assert RLO in html, url
        assert _bare(html) == [], url


def test_the_review_queue_and_a_review_item_isolate_user_text(
    studio: Studio, api: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The review pages show a brief, a brand's colour names, a rubric note and a verdict's
    note: each isolated as on the run page."""
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    kit = brand_kit()
    kit["palette"][0]["name"] = f"deep {RLO}teal"
    api("POST", "/v1/brands", studio.key("A", "admin"), json=kit)
    job = api(
        "POST", "/v1/generations?wait=60", studio.key("A", "creator"),
        json={"brief": f"a mug {RLO}on a table", "brand": "Acme Coffee", "size": "256x256"},
    ).json()  # fmt: skip
    assert job["state"] == "awaiting_review", job
    run_id = job["run_id"]
    lee = studio.signed_in_as("A", "lee", "approver")
    item = f"/review/{run_id}"
    page = lee.get(item).text
    sha = re.search(r'name="sha256" value="([0-9a-f]{64})"', page)
    assert sha, "the review item offers no rubric"
    rated = lee.post(
        f"{item}/rubric",
        data={"csrf": csrf_of(page), "sha256": sha.group(1), "on_brand": "4", "usable": "yes",
              "note": f"warm {RLO}enough"},
        follow_redirects=False,
    )  # fmt: skip
    assert rated.status_code == 303, rated.text[-400:]
    for url in ("/review", item):
        html = lee.get(url).text
        assert RLO in html, url
        assert _bare(html) == [], url
    rejected = lee.post(
        f"{item}/decision",
        data={"csrf": csrf_of(lee.get(item).text), "decision": "reject",
              "note": f"too {RLO}dark"},
        follow_redirects=False,
    )  # fmt: skip
    assert rejected.status_code == 303, rejected.text[-400:]
    html = lee.get(item).text  # the verdict's note is the run's reason now
    assert f"too {RLO}dark" in html
    assert _bare(html) == [], item
