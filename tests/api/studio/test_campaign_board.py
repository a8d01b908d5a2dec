"""The campaign board says how each asset ended and why (docs/studio.md, Campaigns): an outside
tester found a partial asset shown only as "succeeded · $0.040" though its result said 1 of 2
accepted, budget-exhausted and rejected assets shown only as "failed", an asset waiting for
review with no candidates and no way to the review, and a queued asset's "run" link a 404."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from brandloop.registry.models_service import CampaignRow, JobRow
from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def always_review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Brand review "always" for Acme Coffee: the agent's default policy plus that line
    (asked for after ``studio``: the data dir's fixture clears the policy's variable)."""
    defaults = (ROOT / "policies" / "agent_defaults.yaml").read_text(encoding="utf-8")
    policy = tmp_path / "agent.yaml"
    policy.write_text(
        defaults + "\nbrand_review:\n  acme-coffee:\n    mode: always\n", encoding="utf-8"
    )
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))


def _campaign(studio: Studio, api: Callable[..., Any], budget: float, count: int) -> str:
    """A campaign of one 128x128 asset wanting ``count`` images, made and run through the API."""
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    key = studio.key("A", "creator")
    body = {"name": "board", "brand": "Acme Coffee", "budget_usd": budget,
            "assets": [{"brief": "a cup on a saucer", "formats": ["128x128"], "count": count}]}  # fmt: skip
    made = api("POST", "/v1/campaigns", key, json=body)
    assert made.status_code == 202, made.text
    return str(made.json()["id"])


def _settled(api: Callable[..., Any], key: str, campaign_id: str) -> dict[str, Any]:
    """The campaign once no asset is queued or running."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        view: dict[str, Any] = api("GET", f"/v1/campaigns/{campaign_id}", key).json()
        if view["state"] in ("done", "awaiting_review"):
            return view
        time.sleep(0.2)
    raise AssertionError(f"campaign {campaign_id} did not settle: {view}")


def test_an_asset_that_fell_short_of_its_budget_says_its_run_status_and_why(
    studio: Studio, api: Callable[..., Any]
) -> None:
    campaign_id = _campaign(studio, api, budget=0.04, count=2)  # room for one image of two
    view = _settled(api, studio.key("A", "viewer"), campaign_id)
    job = view["assets"][0]["job"]
    reason = (job["result"] or {}).get("reason") or (job["error"] or {})["detail"]
    assert reason  # "budget spent ($0.040 of $0.040) with 1 of 2 accepted", or 0 of 2
    page = studio.signed_in_as("A", "vic", "viewer").get(f"/campaigns/{campaign_id}").text
    assert f'<p class="reason"><bdi>{escape(reason)}</bdi></p>' in page
    if job["state"] == "succeeded":  # the run's own status, partial, beside the job's
        assert job["result"]["status"] == "partial"
        assert '</span> · <span class="status status-partial">partial</span>' in page
    assert f'href="/runs/{job["run_id"]}"' in page  # a run that exists is linked


def test_a_queued_asset_has_no_link_to_a_run_that_does_not_exist_yet(studio: Studio) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    asset = {"job_id": "job_q", "index": 0, "brief": "a cup", "format": "64x64", "count": 1}
    with studio.db.session() as session:
        session.add(
            CampaignRow(id="cmp_q", tenant="A", name="waiting", brand="Acme Coffee",
                        budget_usd=1.0, assets=[asset], created_at=moment)
        )  # fmt: skip
        session.add(
            JobRow(id="job_q", tenant="A", kind="campaign_asset", state="queued",
                   request={"brief": "a cup"}, run_id="run_not_yet", campaign_id="cmp_q",
                   created_at=moment)
        )  # fmt: skip
    page = studio.signed_in_as("A", "vic", "viewer").get("/campaigns/cmp_q")
    assert page.status_code == 200, page.text
    assert "run_not_yet" not in page.text and "not started yet" in page.text


def test_an_asset_waiting_for_review_shows_its_candidates_and_links_approvers_to_the_review(
    studio: Studio, api: Callable[..., Any], always_review: None
) -> None:
    campaign_id = _campaign(studio, api, budget=0.5, count=1)
    view = _settled(api, studio.key("A", "viewer"), campaign_id)
    job = view["assets"][0]["job"]
    assert job["state"] == "awaiting_review", job
    review = f'<a href="/review/{job["run_id"]}">Review them</a>'
    for role in ("viewer", "creator", "approver"):
        page = studio.signed_in_as("A", f"p-{role}", role).get(f"/campaigns/{campaign_id}").text
        assert "1 candidate(s) waiting for review" in page, role
        # its thumbnail, described by the asset and its brief (not by its format alone)
        alt = "Asset 1 128x128 image 1, waiting for review: a cup on a saucer"
        assert page.count(f'alt="{alt}"') == 1, role
        assert (review in page) == (role == "approver"), role
    # rejected: the card says so and why (the reviewer's note)
    note = "the saucer is <off-brand> & too dark"
    verdict = {"decision": "reject", "note": note}
    done = api(
        "POST", f"/v1/review/runs/{job['run_id']}", studio.key("A", "approver"), json=verdict
    )
    assert done.status_code == 200, done.text
    page = studio.signed_in_as("A", "vic", "viewer").get(f"/campaigns/{campaign_id}").text
    assert '<span class="status status-failed">failed</span>' in page
    assert str(escape(note)) in page and note not in page
