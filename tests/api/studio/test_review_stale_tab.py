"""A verdict from a review page left open after the run was decided: the API records a verdict
on a delivered run and changes nothing, and the studio says so, naming who decided the run,
instead of answering with the run's page as if this verdict had applied (outside tester,
session 35)."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from brandloop.registry.models import AuditRow
from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of


@pytest.fixture
def always_review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))


def test_a_reject_from_a_stale_tab_says_the_run_was_already_approved(
    studio: Studio, api: Callable[..., Any], always_review: None
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    job = api(
        "POST",
        "/v1/generations?wait=60",
        studio.key("A", "creator"),
        json={"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256", "seed": 3},
    ).json()
    assert job["state"] == "awaiting_review", job
    run_id = job["run_id"]
    lee = studio.signed_in_as("A", "lee", "approver")
    tab1, tab2 = lee.get(f"/review/{run_id}").text, lee.get(f"/review/{run_id}").text
    approved = lee.post(
        f"/review/{run_id}/decision",
        data={"csrf": csrf_of(tab1), "decision": "approve", "note": "on brand"},
        follow_redirects=False,
    )
    assert approved.status_code == 303 and approved.headers["location"] == f"/runs/{run_id}"
    stale = lee.post(
        f"/review/{run_id}/decision",
        data={"csrf": csrf_of(tab2), "decision": "reject", "note": "too dark after all"},
        follow_redirects=False,
    )
    assert stale.status_code == 200, stale.text[-600:]
    text = html.unescape(stale.text)
    assert "Your rejection was recorded; it changed nothing" in text
    assert f"Run {run_id} was already approved by <bdi>lee</bdi> at <time" in text
    assert "it is succeeded" in text and "too dark after all" in text
    assert f'href="/runs/{run_id}"' in text
    # as at the API: the run stays delivered, the rejection is on its record
    assert "status-succeeded" in lee.get(f"/runs/{run_id}").text
    with studio.db.session() as session:
        actions = session.scalars(
            select(AuditRow.action).where(AuditRow.subject_id == run_id).order_by(AuditRow.id)
        ).all()
    assert actions[-1] == "run.rejected", actions
    # another reviewer's stale approval names the approver too
    cara = studio.signed_in_as("A", "cara", "approver")
    late = cara.post(
        f"/review/{run_id}/decision",
        data={"csrf": csrf_of(cara.get("/review").text), "decision": "approve"},
        follow_redirects=False,
    )
    assert late.status_code == 200, late.text[-600:]
    assert "Your approval was recorded" in late.text and "approved by <bdi>lee</bdi>" in late.text
