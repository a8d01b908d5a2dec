"""A refused form is its own page again (status 422), never a page of its own: the message
beside the field, named by the label the page shows it with and tied to it (aria-invalid,
aria-describedby, autofocus, a summary linking to it), and what was typed kept
(docs/studio.md, outside tester)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from brandloop.registry.models import RunRow
from brandloop.registry.models_service import JobRow, ThreadRow
from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of

TYPED = "a hero banner for the autumn sale, warm, on-brand"


def _field(page: str, element_id: str) -> str:
    """The opening tag of the element with ``element_id``."""
    match = re.search(rf'<(?:input|textarea|select)[^>]*\bid="{element_id}"[^>]*>', page)
    assert match, f"no field #{element_id}"
    return match.group(0)


def _refused_beside(page: Any, element_id: str, words: str) -> str:
    """The page shown again with ``words`` beside field ``element_id``; its text."""
    assert page.status_code == 422, page.text[:400]
    text = page.text
    assert "Back to the studio" not in text
    tag = _field(text, element_id)
    assert 'aria-invalid="true"' in tag and "autofocus" in tag, tag
    assert f'aria-describedby="{element_id}-error"' in tag, tag
    described = re.search(rf'id="{element_id}-error">([^<]*)<', text)
    assert described and words in html.unescape(described.group(1)), text[-1500:]
    assert f'<a href="#{element_id}">' in text  # the summary links to the field
    return text


def test_new_thread_refused_is_the_chat_page_again_with_what_was_typed(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    ana = studio.signed_in_as("A", "ana", "creator")
    form = {"brand": "Acme Coffee", "title": "Autumn", "message": TYPED, "count": "2"}
    page = studio.post_form(ana, "/chat", "/chat", {**form, "size": "1024"})
    text = _refused_beside(page, "size", "Size: not of the form WIDTHxHEIGHT")
    assert TYPED in text and 'value="Autumn"' in text and 'value="1024"' in text
    assert 'value="2"' in text
    assert "New thread" in text  # the chat page, its form
    page = studio.post_form(ana, "/chat", "/chat", {**form, "message": "   ", "size": "256x256"})
    text = _refused_beside(page, "message", "Brief: is blank: write something")
    assert "message:" not in text
    with studio.db.session() as session:
        assert session.query(ThreadRow).count() == 0


def test_revise_asking_for_no_change_is_the_thread_page_again(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    ana = studio.signed_in_as("A", "ana", "creator")
    started = studio.post_form(
        ana, "/chat", "/chat", {"brand": "Acme Coffee", "message": "a cup", "size": "256x256"}
    )
    thread = started.headers["location"].split("#")[0]
    asked = "what formats do you have?"
    page = studio.post_form(ana, thread, f"{thread}/messages", {"content": asked})
    text = _refused_beside(page, "content", "Revise: this follow-up asks for no change")
    assert f">{asked}</textarea>" in text
    assert "content:" not in text
    with studio.db.session() as session:
        assert session.query(JobRow).count() == 1  # the first turn's only


def test_style_note_refused_is_the_brand_page_again(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    ana = studio.signed_in_as("A", "ana", "creator")
    url = "/brands/Acme Coffee"
    page = studio.post_form(ana, url, f"{url}/notes", {"text": "    "})
    text = _refused_beside(page, "note", "New note: is blank: write something")
    assert "Style notes (memory)" in text
    page = studio.post_form(ana, url, f"{url}/notes", {"text": "warm " * 801})
    text = _refused_beside(page, "note", "New note: takes at most 4,000 characters")
    assert "text:" not in text and ("warm " * 801).strip() in text


def test_template_draft_refused_keeps_the_body_typed(studio: Studio) -> None:
    ana = studio.signed_in_as("A", "ana", "creator")
    url = "/templates/brand-hero"
    body = "{{ brief }} in {% if x %} the brand's colours " + "and more words " * 400
    page = studio.post_form(ana, url, f"{url}/versions", {"body": body, "message": "try"})
    assert page.status_code == 422, page.text[:400]
    text = _refused_beside(page, "body", "Body:")
    assert html.escape(body, quote=False) in text.replace("&#39;", "'")
    assert 'value="try"' in text
    page = studio.post_form(ana, url, f"{url}/versions", {"body": "   "})
    _refused_beside(page, "body", "Body: is blank: write something")


def test_move_label_refusals_name_the_labels_and_never_echo(studio: Studio) -> None:
    root = studio.signed_in_as("A", "root", "admin")
    url = "/templates/brand-hero"
    secret = "my-password-hunter2"
    page = studio.post_form(root, url, f"{url}/labels", {"label": "production", "weights": secret})
    text = _refused_beside(page, "weights", "Versions: takes VERSION or VERSION=WEIGHT")
    described = re.search(r'id="weights-error">([^<]*)<', text)
    assert described and secret not in described.group(1)
    assert secret not in text.split('id="weights"')[0]  # the summary does not echo it either
    page = studio.post_form(root, url, f"{url}/labels", {"label": "Prod!", "weights": "1"})
    _refused_beside(page, "label", "Label: takes lower-case letters, digits")


def test_a_form_refused_before_its_page_code_runs_is_its_page_too(
    studio: Studio, api: Callable[..., Any]
) -> None:
    """The input guard's refusals (a NUL character here) are the form's page again too."""
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    ana = studio.signed_in_as("A", "ana", "creator")
    token = csrf_of(ana.get("/chat").text)
    page = ana.post(
        "/chat",
        data={"csrf": token, "brand": "Acme Coffee", "size": "256x256", "message": "a\x00cup"},
    )
    assert page.status_code == 422
    assert 'aria-invalid="true"' in _field(page.text, "message")
    assert "Brief: text may not hold a NUL character" in html.unescape(page.text)
    assert "\x00" not in page.text and 'value="256x256"' in page.text  # the rest is kept


def test_a_credential_typed_into_a_form_is_never_shown_again(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    ana, key = studio.signed_in_with_key("A", "creator")
    page = studio.post_form(
        ana, "/chat", "/chat", {"brand": "Acme Coffee", "title": "Autumn", "message": f"a {key}"}
    )
    assert page.status_code == 422
    assert 'aria-invalid="true"' in _field(page.text, "message")
    assert key not in page.text and key[:12] not in page.text
    assert 'value="Autumn"' in page.text


def test_review_forms_refused_are_the_review_page_again(
    studio: Studio, api: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reject with no note, and an assignee who is no reviewer: the run's review page again,
    the message beside its field, what was typed kept; the run still waits."""
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    body = {"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256", "seed": 3}
    job = api("POST", "/v1/generations?wait=60", studio.key("A", "creator"), json=body).json()
    assert job["state"] == "awaiting_review", job
    url = f"/review/{job['run_id']}"
    lee = studio.signed_in_as("A", "lee", "approver")
    page = studio.post_form(lee, url, f"{url}/decision", {"decision": "reject", "note": "  "})
    _refused_beside(page, "note", "Note: to reject run")
    page = studio.post_form(lee, url, f"{url}/assign", {"assignee": "nobody-here"})
    text = _refused_beside(page, "assignee", "Assign to: no reviewer 'nobody-here'")
    assert 'value="nobody-here"' in text
    with studio.db.session() as session:
        run = session.get(RunRow, job["run_id"])
        assert run is not None and run.status == "awaiting_review"


def test_template_reject_with_no_reason_is_the_template_page_again(studio: Studio) -> None:
    ana = studio.signed_in_as("A", "ana", "creator")
    url = "/templates/brand-hero"
    added = studio.post_form(ana, url, f"{url}/versions", {"body": "{{ brief }}, louder"})
    assert added.status_code in (200, 303), added.text[:400]
    submitted = studio.post_form(ana, url, f"{url}/versions/2/submit", {})
    assert submitted.status_code in (200, 303), submitted.text[:400]
    lee = studio.signed_in_as("A", "lee", "approver")
    form = {"decision": "reject", "note": " "}
    page = studio.post_form(lee, url, f"{url}/versions/2/review", form)
    _refused_beside(page, "reject-note-2", "Why reject v2?: is blank: say why")
    assert "status-in_review" in page.text  # nothing changed
