"""A form posted once its session has ended: sign-in, then back to the page the form was on,
never to the form's action (a POST-only path: before session 35 signing in landed on a 405
page), and the sign-in page says the session ended."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of

SITE = "http://testserver"


def _ended(studio: Studio, api: Callable[..., Any]) -> tuple[TestClient, str, str]:
    """A browser on the brand's page whose session then ended (signed out in another tab):
    the browser, the page's CSRF token and a key to sign in again with."""
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    browser, key = studio.signed_in_with_key("A", "creator")
    page = browser.get("/brands/Acme%20Coffee")
    assert page.status_code == 200, page.text
    token = csrf_of(page.text)
    assert browser.post("/signout", data={"csrf": token}, follow_redirects=False).status_code == 303
    return browser, token, key


def _next_of(location: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(location)
    assert parts.path == "/signin", location
    query = parse_qs(parts.query)
    return query["next"][0], query


@pytest.mark.parametrize("referer", [f"{SITE}/brands/Acme%20Coffee", None])
def test_a_note_added_after_the_session_ended_signs_in_back_to_the_brand_page(
    studio: Studio, api: Callable[..., Any], referer: str | None
) -> None:
    browser, token, key = _ended(studio, api)
    headers = {"Referer": referer} if referer else {}
    posted = browser.post(
        "/brands/Acme%20Coffee/notes",
        data={"csrf": token, "text": "warm light only"},
        headers=headers,
        follow_redirects=False,
    )
    assert posted.status_code == 303
    target, query = _next_of(posted.headers["location"])
    assert target == "/brands/Acme%20Coffee" and query["expired"] == ["1"]
    signin = browser.get(posted.headers["location"])
    assert "Your session ended; sign in again" in signin.text
    again = browser.post(
        "/signin",
        data={"key": key, "csrf": csrf_of(signin.text), "next": target},
        follow_redirects=False,
    )
    assert again.status_code == 303 and again.headers["location"] == target
    assert browser.get(target).status_code == 200


@pytest.mark.parametrize(
    ("action", "page"),
    [
        ("/chat/thr_gone/messages", "/chat/thr_gone"),
        ("/review/run_gone/decision", "/review/run_gone"),
        ("/review/run_gone/assign", "/review/run_gone"),
        ("/templates/hero%20shot/versions", "/templates/hero%20shot"),
        ("/runs/run_gone/resume", "/chat"),  # no page named and no Referer: Chat
    ],
)
def test_without_a_session_a_form_goes_to_its_page_never_its_action(
    studio: Studio, action: str, page: str
) -> None:
    browser = studio.browser()
    posted = browser.post(action, data={"csrf": "x"}, follow_redirects=False)
    assert posted.status_code == 303
    target, query = _next_of(posted.headers["location"])
    assert target == page and query["expired"] == ["1"]


@pytest.mark.parametrize(
    "referer",
    [
        f"{SITE}/chat/thr_gone/messages",  # the address after a refused form: POST-only
        "https://evil.example/chat/thr_gone",  # another site's
        f"{SITE}/signin?next=/runs",
    ],
)
def test_a_referer_that_is_no_page_of_this_site_is_not_followed(
    studio: Studio, referer: str
) -> None:
    posted = studio.browser().post(
        "/chat/thr_gone/messages",
        data={"csrf": "x"},
        headers={"Referer": referer},
        follow_redirects=False,
    )
    assert _next_of(posted.headers["location"])[0] == "/chat/thr_gone"


def test_a_referer_keeps_its_query(studio: Studio) -> None:
    posted = studio.browser().post(
        "/review/run_gone/decision",
        data={"csrf": "x"},
        headers={"Referer": f"{SITE}/review?mine=true"},
        follow_redirects=False,
    )
    assert _next_of(posted.headers["location"])[0] == "/review?mine=true"


def test_a_page_asked_for_says_the_session_ended_only_when_there_was_one(studio: Studio) -> None:
    fresh = studio.browser().get("/runs?status=failed", follow_redirects=False)
    target, query = _next_of(fresh.headers["location"])
    assert target == "/runs?status=failed" and "expired" not in query
    stale = studio.browser()
    stale.cookies.set("bl_session", "a-session-that-ended")
    _, query = _next_of(stale.get("/runs", follow_redirects=False).headers["location"])
    assert query["expired"] == ["1"]
    assert "Your session ended" not in studio.browser().get("/signin").text
