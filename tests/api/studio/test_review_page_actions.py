"""The review page offers only actions that would succeed: no golden button for an image no
rubric found usable (it once posted to a 409), no rubric form or golden button for a deleted
image (they once posted to a 404); and a run whose held image was deleted answers an approval
with an HTML page naming the image and saying to reject (it was a 500 with a JSON body), and
is rejected from its form as usual. On both databases."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of


def _generate(studio: Studio, api: Callable[..., Any], seed: int) -> dict[str, Any]:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    job = api(
        "POST",
        "/v1/generations?wait=60",
        studio.key("A", "creator"),
        json={"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256", "seed": seed},
    ).json()
    assert job["state"] in ("succeeded", "awaiting_review"), job
    return dict(job)


def _held(api: Callable[..., Any], key: str, run_id: str) -> list[str]:
    trace = api("GET", f"/v1/runs/{run_id}/trace", key).json()
    return [a["artifact_sha256"] for a in trace["attempts"] if a["outcome"] == "accepted"]


def test_golden_is_offered_only_for_an_image_rated_usable_and_nothing_for_a_deleted_one(
    studio: Studio, api: Callable[..., Any]
) -> None:
    job = _generate(studio, api, seed=31)
    run_id = job["run_id"]
    viewer = studio.key("A", "viewer")
    [sha] = [i["sha256"] for i in api("GET", f"/v1/runs/{run_id}", viewer).json()["images"]]
    lee = studio.signed_in_as("A", "lee", "approver")
    golden = f'action="/review/{run_id}/golden"'
    page = lee.get(f"/review/{run_id}").text
    assert golden not in page, "a golden button no rubric backs"
    assert "a golden case needs reviewers&#39; verdict that the image is usable" in page, page
    rated = lee.post(
        f"/review/{run_id}/rubric",
        data={"csrf": csrf_of(page), "sha256": sha, "on_brand": "4", "usable": "no"},
        follow_redirects=False,
    )
    assert rated.status_code == 303, rated.text
    assert golden not in lee.get(f"/review/{run_id}").text  # rated, but not usable
    cleo = studio.signed_in_as("A", "cleo", "approver")
    for reviewer in (lee, cleo):  # now most rubrics say usable
        rated = reviewer.post(
            f"/review/{run_id}/rubric",
            data={
                "csrf": csrf_of(reviewer.get(f"/review/{run_id}").text),
                "sha256": sha,
                "on_brand": "4",
                "usable": "yes",
            },
            follow_redirects=False,
        )
        assert rated.status_code == 303, rated.text
    page = lee.get(f"/review/{run_id}").text
    assert golden in page
    added = lee.post(
        f"/review/{run_id}/golden",
        data={"csrf": csrf_of(page), "sha256": sha},
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text
    # the image deleted: neither its rubric form nor its golden button, and why
    deleted = api("DELETE", f"/v1/artifacts/{sha}", studio.key("A", "admin"))
    assert deleted.status_code == 204, deleted.text
    page = lee.get(f"/review/{run_id}").text
    assert golden not in page and f'name="sha256" value="{sha}"' not in page, page
    assert "Image deleted" in page


@pytest.fixture
def acme_reviewed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text("brand_review:\n  acme-coffee: {mode: always}\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))


def test_a_run_whose_held_image_was_deleted_is_rejected_from_its_page(
    studio: Studio, api: Callable[..., Any], acme_reviewed: None
) -> None:
    job = _generate(studio, api, seed=32)
    assert job["state"] == "awaiting_review", job
    run_id = job["run_id"]
    [sha] = _held(api, studio.key("A", "viewer"), run_id)
    deleted = api("DELETE", f"/v1/artifacts/{sha}", studio.key("A", "admin"))
    assert deleted.status_code == 204, deleted.text
    lee = studio.signed_in_as("A", "lee", "approver")
    page = lee.get(f"/review/{run_id}").text
    assert f'name="sha256" value="{sha}"' not in page and "Image deleted" in page
    refused = lee.post(
        f"/review/{run_id}/decision",
        data={"csrf": csrf_of(page), "decision": "approve", "note": "ok"},
        follow_redirects=False,
    )
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("text/html"), refused.headers
    assert sha in refused.text and "reject the run instead" in refused.text, refused.text
    assert str(studio.settings.data_dir) not in refused.text
    assert "awaiting review" in lee.get(f"/runs/{run_id}").text
    rejected = lee.post(
        f"/review/{run_id}/decision",
        data={"csrf": csrf_of(page), "decision": "reject", "note": "gone"},
        follow_redirects=False,
    )
    assert rejected.status_code == 303, rejected.text
    run = api("GET", f"/v1/runs/{run_id}", studio.key("A", "viewer")).json()
    assert run["status"] == "failed" and not run["images"], run


def test_the_requester_is_offered_no_approve_button_and_told_why(
    studio: Studio, api: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four eyes: an admin who asked for the run sees Approve disabled with the reason beside
    it, never a button that answers a 409 page (outside tester); another approver can."""
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    creator = studio.signed_in_as("A", "creator", "admin")
    thread = studio.post_form(
        creator,
        "/chat",
        "/chat",
        {"brand": "Acme Coffee", "message": "a steaming cup", "size": "256x256"},
    ).headers["location"]
    run_id = None
    for _ in range(600):  # the live page settles once the run waits for review
        found = re.search(r'href="/review/(run_\w+)"', creator.get(thread).text)
        if found:
            run_id = found.group(1)
            break
        time.sleep(0.1)
    assert run_id, "the run never reached review"
    page = creator.get(f"/review/{run_id}").text
    approve = re.search(r'<button[^>]*value="approve"[^>]*>', page)
    assert approve, page[-2000:]
    assert "disabled" in approve.group(0) and 'data-shortcut="a"' not in approve.group(0)
    assert 'aria-describedby="four-eyes"' in approve.group(0)
    assert re.search(r'id="four-eyes"[^>]*>[^<]*you asked for this run', page)
    other = studio.signed_in_as("A", "lee", "approver").get(f"/review/{run_id}").text
    approve = re.search(r'<button[^>]*value="approve"[^>]*>', other)
    assert approve and "disabled" not in approve.group(0)
    assert 'data-shortcut="a"' in approve.group(0)
