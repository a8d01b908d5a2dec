"""Studio forms keep the API's rule for text: a NUL character is refused (a 422 page naming the
field, the API's own words) before the page's code runs, so nothing is stored, prompted or
audited. One check covers every form; each form the API would refuse is tried here."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from brandloop.registry.models_agent import ReviewDecisionRow
from brandloop.registry.models_service import JobRow, ThreadMessageRow, ThreadRow
from brandloop.registry.models_studio import ImageRatingRow
from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of

MESSAGE = "text may not hold a NUL character or a lone surrogate"


@pytest.fixture
def always_review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))


def _refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert f"{field}: {MESSAGE}" in response.text
    assert "Traceback" not in response.text and "\x00" not in response.text


def test_review_verdict_and_rubric_notes_with_a_nul_are_refused(
    studio: Studio, api: Callable[..., Any], always_review: None
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    job = api(
        "POST",
        "/v1/generations?wait=60",
        studio.key("A", "creator"),
        json={"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256"},
    ).json()
    assert job["state"] == "awaiting_review", job
    run_id = job["run_id"]
    lee = studio.signed_in_as("A", "lee", "approver")
    page = lee.get(f"/review/{run_id}").text
    sha = re.search(r'name="sha256" value="([0-9a-f]{64})"', page).group(1)  # type: ignore[union-attr]
    rubric = lee.post(
        f"/review/{run_id}/rubric",
        data={"csrf": csrf_of(page), "sha256": sha, "on_brand": "3", "usable": "yes",
              "note": "r\x00n"},
    )  # fmt: skip
    _refused(rubric, "note")
    verdict = lee.post(
        f"/review/{run_id}/decision",
        data={"csrf": csrf_of(page), "decision": "reject", "note": "a\x00b"},
    )
    _refused(verdict, "Note")  # the verdict form's page again, its field named by its label
    assert 'id="verdict"' in verdict.text
    with studio.db.session() as session:
        assert session.query(ImageRatingRow).count() == 0
        assert session.query(ReviewDecisionRow).count() == 0
    run = api("GET", f"/v1/runs/{run_id}", studio.key("A", "viewer")).json()
    assert run["status"] == "awaiting_review", run
    # the same forms without the NUL still work
    rubric = lee.post(
        f"/review/{run_id}/rubric",
        data={"csrf": csrf_of(page), "sha256": sha, "on_brand": "3", "usable": "yes",
              "note": "fine"},
        follow_redirects=False,
    )  # fmt: skip
    assert rubric.status_code == 303, rubric.text


def test_memory_note_and_template_draft_with_a_nul_are_refused(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    ana = studio.signed_in_as("A", "ana", "admin")
    page = ana.get("/brands/Acme Coffee").text
    note = ana.post(
        "/brands/Acme Coffee/notes", data={"csrf": csrf_of(page), "text": "use\x00blue"}
    )
    _refused(note, "New note")
    viewer = studio.key("A", "viewer")
    assert api("GET", "/v1/memory/notes?brand=Acme%20Coffee", viewer).json() == []
    page = ana.get("/templates/brand-hero").text
    for data, field in (
        ({"body": "{{ brief }} x\x00y", "message": "m"}, "Body"),
        ({"body": "{{ brief }}", "message": "m\x00m"}, "Message"),
        ({"body": "{{ brief }}", "negative_body": "n\x00", "message": "m"}, "Negative body"),
    ):
        draft = ana.post("/templates/brand-hero/versions", data={"csrf": csrf_of(page), **data})
        _refused(draft, field)
    versions = api("GET", "/v1/templates/brand-hero", viewer).json()["versions"]
    assert [v["version"] for v in versions] == [1]


def test_chat_title_and_messages_with_a_nul_are_refused(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    ana = studio.signed_in_as("A", "ana", "creator")
    token = csrf_of(ana.get("/chat").text)
    for data, field in (
        ({"title": "t\x00t", "message": "a cup of coffee"}, "Title"),
        ({"title": "t", "message": "a cup\x00 of coffee"}, "Brief"),
    ):
        started = ana.post(
            "/chat", data={"csrf": token, "brand": "Acme Coffee", "size": "256x256", **data}
        )
        _refused(started, field)
    with studio.db.session() as session:
        assert session.query(ThreadRow).count() == 0
        assert session.query(JobRow).count() == 0
    # a reply in an existing thread keeps the same rule
    thread = ana.post(
        "/chat",
        data={"csrf": token, "brand": "Acme Coffee", "message": "a cup", "size": "256x256"},
        follow_redirects=False,
    ).headers["location"]
    thread_id = thread.rsplit("/", 1)[-1].split("#")[0]
    with studio.db.session() as session:
        before = session.query(ThreadMessageRow).count()
        jobs = session.query(JobRow).count()
    reply = ana.post(f"/chat/{thread_id}/messages", data={"csrf": token, "content": "more\x00"})
    _refused(reply, "Revise")
    with studio.db.session() as session:
        assert session.query(ThreadMessageRow).count() == before
        assert session.query(JobRow).count() == jobs
