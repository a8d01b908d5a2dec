"""An image's alt text says what it is: which image, and the brief it was made for (cut at a
word), never a hash or a run id (outside tester: "accepted image 1d9343f12f76 from
procedural/draft", "first image of run_42e8...")."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from brandloop.api.studio.web import image_alt
from brandloop.registry.models import AttemptRow
from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, make_run

ALT = re.compile(r'<img [^>]*alt="([^"]*)"')
BRIEF = "a steaming mug on a wooden table"


def _alts(page: str) -> list[str]:
    found = ALT.findall(page)
    assert found, "the page shows no image"
    return found


def _describes(alt: str, brief: str) -> None:
    assert brief in alt, alt
    assert not re.search(r"[0-9a-f]{12}|run_", alt), alt


def test_gallery_run_and_thread_images_are_described_by_their_brief(
    studio: Studio, api: Callable[..., Any]
) -> None:
    run = make_run(studio, api, brief=BRIEF)
    ana = studio.signed_in_as("A", "ana", "creator")
    for alt in _alts(ana.get("/runs").text):
        _describes(alt, BRIEF)
    alts = _alts(ana.get(f"/runs/{run['run_id']}").text)
    assert any(a.startswith("Image 1 of ") for a in alts), alts
    for alt in alts:
        _describes(alt, BRIEF)
    thread = (
        studio.post_form(
            ana,
            "/chat",
            "/chat",
            {"brand": "Acme Coffee", "message": "a cup of tea", "size": "256x256"},
        )
        .headers["location"]
        .split("#")[0]
    )
    page = ""
    for _ in range(600):
        page = ana.get(thread).text
        if "<img " in page and 'class="live"' not in page:
            break
        time.sleep(0.1)
    for alt in _alts(page):
        _describes(alt, "a cup of tea")


def test_a_long_brief_is_cut_at_a_word() -> None:
    brief = "a steaming mug of coffee " * 10
    alt = image_alt(brief, "Image 1 of 1")
    assert alt.startswith("Image 1 of 1: a steaming mug") and alt.endswith("coffee…")
    assert len(alt) <= len("Image 1 of 1: ") + 101
    assert image_alt("  ", "First image") == "First image"


def test_a_review_items_alt_text_tells_a_held_image_from_a_rejected_candidate(
    studio: Studio, api: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every image of a review item's attempts was "held for review", the candidates the
    acceptance rule rejected too (their badge said "rejected"; outside tester, session 35)."""
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    job = api(
        "POST",
        "/v1/generations?wait=60",
        studio.key("A", "creator"),
        json={"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256", "seed": 11},
    ).json()
    assert job["state"] == "awaiting_review", job
    with studio.db.session() as session:
        made = session.execute(
            select(AttemptRow.artifact_sha256, AttemptRow.outcome).where(
                AttemptRow.run_id == job["run_id"], AttemptRow.artifact_sha256.is_not(None)
            )
        ).all()
    outcomes = {str(sha): outcome for sha, outcome in made}
    assert {"accepted", "rejected"} <= set(outcomes.values()), outcomes
    page = studio.signed_in_as("A", "lee", "approver").get(f"/review/{job['run_id']}").text
    figures = re.findall(
        r'<figure class="image-card" id="img-([0-9a-f]{12})">(.*?)</figure>', page, re.S
    )
    assert figures, page
    for prefix, figure in figures:
        alt = html.unescape(_alts(figure)[0])
        outcome = next(o for sha, o in outcomes.items() if sha.startswith(prefix))
        _describes(alt, "a steaming cup")
        if outcome == "accepted":
            assert ", held for review, from " in alt and "rejected" not in alt, alt
        else:
            assert ", a candidate the acceptance rule rejected, from " in alt, alt
            assert "held for review" not in alt, alt
    assert {o for sha, o in outcomes.items() if sha[:12] in dict(figures)} == {
        "accepted",
        "rejected",
    }


def test_pairwise_images_are_described_by_their_briefs(
    studio: Studio, api: Callable[..., Any]
) -> None:
    """docs/studio.md: an image's alt names the image and its brief; the pairwise page's said
    'left image, procedural/studio' (an outside tester)."""
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    creator = studio.key("A", "creator")
    briefs = {"procedural/draft": BRIEF, "procedural/studio": "a latte in a paper cup"}
    for model, brief in briefs.items():
        job = api(
            "POST",
            "/v1/generations?wait=60",
            creator,
            json={"brief": brief, "brand": "Acme Coffee", "size": "128x128", "model": model},
        ).json()
        assert job["state"] in ("succeeded", "failed"), job  # scored attempts either way
    page = studio.signed_in_as("A", "lee", "approver").get("/review/pairwise?axis=model").text
    alts = _alts(page)
    assert len(alts) == 2, alts
    for alt, side in zip(
        alts, ("Left image, procedural/", "Right image, procedural/"), strict=True
    ):
        assert alt.startswith(side), alt
        model = alt.split(", ", 1)[1].split(":", 1)[0]
        _describes(alt, briefs[model])
