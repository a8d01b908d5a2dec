"""Signing in while signed in (a one-time link opened in a signed-in browser, a second tab's
sign-in form): the sign-in forms carry the presession token, so signing in again replaces the
session; before session 35 each such attempt was a 403 that no reload mended."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.studio.conftest import Studio, csrf_of


def _who(browser: TestClient) -> str:
    page = browser.get("/runs")
    assert page.status_code == 200, page.text
    return page.text


def test_a_link_opened_while_signed_in_signs_in_as_its_principal(studio: Studio) -> None:
    browser = studio.signed_in_as("acme", "cal", "viewer")
    old = browser.cookies.get("bl_session")
    token = studio.link("acme", "lee", "approver")
    page = browser.get(f"/signin/link?token={token}")
    assert page.status_code == 200 and "Continue as lee" in page.text
    response = browser.post(
        "/signin/link", data={"token": token, "csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    assert "lee · acme · approver" in _who(browser)
    # the session it replaced has ended: its cookie no longer signs anyone in
    stale = studio.browser()
    stale.cookies.set("bl_session", old)
    assert stale.get("/runs", follow_redirects=False).status_code == 303


def test_a_second_tabs_sign_in_form_works_after_the_first_tab_signed_in(studio: Studio) -> None:
    key = studio.key("acme", "creator")
    browser = studio.browser()
    tab_a = browser.get("/signin?next=/runs")
    tab_b = browser.get("/signin?next=/runs")
    first = browser.post(
        "/signin",
        data={"key": key, "csrf": csrf_of(tab_a.text), "next": "/runs"},
        follow_redirects=False,
    )
    assert first.status_code == 303
    second = browser.post(
        "/signin",
        data={"key": key, "csrf": csrf_of(tab_b.text), "next": "/runs"},
        follow_redirects=False,
    )
    assert second.status_code == 303 and second.headers["location"] == "/runs", second.text
    # and the sign-in page opened again while signed in works too (the curl repro)
    again = browser.get("/signin")
    other = studio.key("acme", "admin")
    third = browser.post(
        "/signin", data={"key": other, "csrf": csrf_of(again.text)}, follow_redirects=False
    )
    assert third.status_code == 303, third.text
    assert "· acme · admin" in _who(browser)


def test_a_wrong_key_while_signed_in_shows_a_form_that_still_works(studio: Studio) -> None:
    browser, key = studio.signed_in_with_key("acme", "viewer")
    page = browser.get("/signin")
    wrong = browser.post(
        "/signin", data={"key": "bl_nope_nope", "csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert wrong.status_code == 401, wrong.text
    # the page shows the header (with the session's own token for Sign out) and the sign-in
    # form with the presession token: that one signs in
    form = wrong.text[wrong.text.index('action="/signin"') :]
    response = browser.post(
        "/signin", data={"key": key, "csrf": csrf_of(form)}, follow_redirects=False
    )
    assert response.status_code == 303, response.text


def test_signing_in_again_still_needs_the_sign_in_forms_token(studio: Studio) -> None:
    browser, key = studio.signed_in_with_key("acme", "viewer")
    session_token = csrf_of(_who(browser))  # the Sign out form's: the session's own secret
    for data in ({"key": key}, {"key": key, "csrf": "forged"}, {"key": key, "csrf": session_token}):
        response = browser.post("/signin", data=data, follow_redirects=False)
        assert response.status_code == 403, data
    # and every other form still takes the session's secret, never the presession token
    presession = csrf_of(browser.get("/signin").text)
    assert browser.post("/signout", data={"csrf": presession}).status_code == 403
    assert browser.get("/runs", follow_redirects=False).status_code == 200
