"""The Chat page: threads per brand, a brief run live over SSE, accepted images large with
receipts, and replies that edit the brief (the edit shown in the thread)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from brandloop.registry.models_service import JobRow
from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of


def _wait_jobs(studio: Studio, thread_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with studio.db.session() as session:
            states = [j.state for j in session.query(JobRow).filter(JobRow.thread_id == thread_id)]
        if states and all(s in ("succeeded", "failed", "awaiting_review") for s in states):
            return
        time.sleep(0.1)
    raise AssertionError(f"jobs of {thread_id} did not finish")


def test_chat_a_brief_watch_it_live_and_revise_it(studio: Studio, api: Callable[..., Any]) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    browser = studio.signed_in_as("A", "ana", "creator")
    home = browser.get("/chat")
    assert home.status_code == 200 and "Acme Coffee" in home.text
    started = browser.post(
        "/chat",
        data={
            "csrf": csrf_of(home.text),
            "brand": "Acme Coffee",
            "message": "a steaming mug on a wooden table",
            "size": "256x256",
        },
        follow_redirects=False,
    )
    assert started.status_code == 303
    thread_url = started.headers["location"].split("#")[0]
    thread_id = thread_url.rsplit("/", 1)[-1]
    page = browser.get(thread_url).text
    job_id = re.search(r"/chat/jobs/(job_\w+)/result", page).group(1)  # type: ignore[union-attr]
    # the live stream: the run's trace as server-sent events, then `end`
    with browser.stream("GET", f"/chat/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        names = [
            line.split(":", 1)[1].strip()
            for line in stream.iter_lines()
            if line.startswith("event:")
        ]
    assert names[0] == "state" and "planned" in names and "accepted" in names
    assert names[-1] == "end"
    result = browser.get(f"/chat/jobs/{job_id}/result").text
    assert "/thumbs/1024/" in result and "Receipt" in result and "<html" not in result
    page = browser.get(thread_url).text
    assert "/thumbs/1024/" in page and "Receipt" in page

    revised = browser.post(
        f"/chat/{thread_id}/messages",
        data={"csrf": csrf_of(page), "content": "warmer, and drop the mug"},
        follow_redirects=False,
    )
    assert revised.status_code == 303
    _wait_jobs(studio, thread_id)
    page = browser.get(thread_url).text
    assert "Brief edited" in page
    assert "<del><bdi>a steaming mug on a wooden table</bdi></del>" in page
    assert "<ins><bdi>a wooden table</bdi></ins>" in page
    assert "Removed to the negative prompt: mug" in page and "Shift: warmer" in page
    assert page.count("/thumbs/1024/") >= 2


def test_a_viewer_reads_threads_but_cannot_chat(studio: Studio, api: Callable[..., Any]) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    creator = studio.signed_in_as("A", "ana", "creator")
    home = creator.get("/chat")
    thread_url = (
        creator.post(
            "/chat",
            data={"csrf": csrf_of(home.text), "brand": "Acme Coffee", "message": "a cup"},
            follow_redirects=False,
        )
        .headers["location"]
        .split("#")[0]
    )
    viewer = studio.signed_in_as("A", "vic", "viewer")
    page = viewer.get(thread_url)
    assert page.status_code == 200 and "Revise" not in page.text
    thread_id = thread_url.rsplit("/", 1)[-1]
    token = csrf_of(page.text)
    refused = viewer.post(f"/chat/{thread_id}/messages", data={"csrf": token, "content": "x"})
    assert refused.status_code == 403


def test_bad_chat_input_is_a_clear_error_and_stores_nothing(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    browser = studio.signed_in_as("A", "ana", "creator")
    token = csrf_of(browser.get("/chat").text)
    for data, status in (
        ({"brand": "Nobody", "message": "a cup"}, 404),
        ({"brand": "Acme Coffee", "message": ""}, 422),
        ({"brand": "Acme Coffee", "message": "x" * 4001}, 422),
        ({"brand": "Acme Coffee", "message": "a cup", "size": "9x9"}, 422),
        # what the API's body schema refuses is a 422 page too, never a 500
        ({"brand": "Acme Coffee", "message": " \u3000 "}, 422),
        ({"brand": "Acme Coffee", "message": "a cup", "size": "01024x640"}, 422),
    ):
        response = browser.post("/chat", data={"csrf": token, **data})
        assert response.status_code == status, (data, response.text)
        assert "Traceback" not in response.text
    with studio.db.session() as session:
        assert session.query(JobRow).count() == 0


def test_another_tenants_thread_and_job_stream_are_404(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    a = studio.signed_in_as("A", "ana", "creator")
    thread_url = (
        a.post(
            "/chat",
            data={"csrf": csrf_of(a.get("/chat").text), "brand": "Acme Coffee", "message": "a cup"},
            follow_redirects=False,
        )
        .headers["location"]
        .split("#")[0]
    )
    job_id = re.search(r"/chat/jobs/(job_\w+)/", a.get(thread_url).text).group(1)  # type: ignore[union-attr]
    b = studio.signed_in_as("B", "bob", "admin")
    for path in (thread_url, f"/chat/jobs/{job_id}/events", f"/chat/jobs/{job_id}/result"):
        assert b.get(path).status_code == 404, path
    thread_id = thread_url.rsplit("/", 1)[-1]
    token = csrf_of(b.get("/chat").text)
    assert (
        b.post(f"/chat/{thread_id}/messages", data={"csrf": token, "content": "x"}).status_code
        == 404
    )
    assert thread_id not in b.get("/chat").text


def test_chat_form_errors_are_plain_words_and_pages_have_an_icon(
    studio: Studio, api: Callable[..., Any]
) -> None:
    """A refused field is named with what it takes, never the schema's regex; every page names
    an icon, and /favicon.ico is no 404 in the browser's console."""
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    browser = studio.signed_in_as("A", "ana", "creator")
    home = browser.get("/chat").text
    token = csrf_of(home)
    for data, words in (
        ({"message": "a cup", "size": "abc"}, "Size: not of the form WIDTHxHEIGHT"),
        ({"message": " \u3000 "}, "Brief: is blank"),
    ):
        page = browser.post("/chat", data={"csrf": token, "brand": "Acme Coffee", **data})
        assert page.status_code == 422 and words in page.text, page.text
        assert "pattern" not in page.text and "^(" not in page.text, page.text
    assert re.search(r'<link rel="icon" href="data:image/svg\+xml,', home)
    assert browser.get("/favicon.ico").status_code in (200, 204)
    with studio.db.session() as session:
        assert session.query(JobRow).count() == 0


def test_a_thread_without_a_title_is_titled_from_its_redacted_message(
    studio: Studio, api: Callable[..., Any]
) -> None:
    """The default title was the message's first 60 characters cut before redaction, so an
    email cut at 60 no longer looked like one and was stored in the title every user of the
    tenant sees (outside tester)."""
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    browser = studio.signed_in_as("A", "ana", "creator")
    home = browser.get("/chat")
    message = "Send the proofs to:   ana.lopez.private@acme-coffee-roasters.com then a steaming cup"
    started = browser.post(
        "/chat",
        data={"csrf": csrf_of(home.text), "brand": "Acme Coffee", "message": message},
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    thread_id = started.headers["location"].split("#")[0].rsplit("/", 1)[-1]
    thread = api("GET", f"/v1/threads/{thread_id}", studio.key("A", "viewer")).json()
    assert thread["title"] == "Send the proofs to: [redacted email] then a steaming cup"
    assert "ana.lopez" not in browser.get(f"/chat/{thread_id}").text
    assert "ana.lopez" not in browser.get("/chat").text
