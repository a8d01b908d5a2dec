"""Signing in to the studio: an API key or a one-time link becomes a session cookie
(HttpOnly; Secure behind https; SameSite=Lax); CSRF tokens on every form; sign-out ends it."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest

from brandloop.registry.models_studio import StudioLinkRow
from tests.api.studio.conftest import Studio, csrf_of
from tests.api.test_cli import run_cli


def test_an_api_key_signs_in_and_the_cookie_is_httponly_and_lax(studio: Studio) -> None:
    key = studio.key("A", "creator")
    browser = studio.browser()
    assert browser.get("/runs", follow_redirects=False).headers["location"].startswith("/signin")
    page = browser.get("/signin")
    response = browser.post(
        "/signin",
        data={"key": key, "csrf": csrf_of(page.text), "next": "/runs"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/runs"
    cookie = response.headers["set-cookie"].lower()
    assert "bl_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http here
    assert key not in response.text and key not in cookie
    runs = browser.get("/runs")
    assert runs.status_code == 200 and "Sign out" in runs.text


def test_the_cookie_is_secure_behind_https(studio: Studio) -> None:
    key = studio.key("A", "viewer")
    browser = studio.browser()
    page = browser.get("/signin")
    response = browser.post(
        "/signin",
        data={"key": key, "csrf": csrf_of(page.text)},
        headers={"X-Forwarded-Proto": "https"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert "secure" in response.headers["set-cookie"].lower()


def test_a_wrong_key_is_refused_without_a_session(studio: Studio) -> None:
    browser = studio.browser()
    page = browser.get("/signin")
    for key in ("bl_nope_nope", "", "x" * 400):
        response = browser.post("/signin", data={"key": key, "csrf": csrf_of(page.text)})
        assert response.status_code in (401, 422)
        assert "set-cookie" not in response.headers or "bl_session" not in response.headers.get(
            "set-cookie", ""
        )
    assert browser.get("/runs", follow_redirects=False).status_code == 303


def test_a_one_time_link_signs_in_once(studio: Studio) -> None:
    token = studio.link("A", "ana", "approver")
    first = studio.browser()
    page = first.get(f"/signin/link?token={token}")
    assert page.status_code == 200 and "ana" in page.text
    # opening the link (a preview, a prefetch) does not use it up; the POST does
    again = studio.browser().get(f"/signin/link?token={token}")
    assert again.status_code == 200
    used = first.post(
        "/signin/link", data={"token": token, "csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert used.status_code == 303
    assert "ana · A · approver" in first.get("/runs").text
    second = studio.browser()
    page2 = second.get(f"/signin/link?token={token}")
    assert page2.status_code == 401
    replay = second.post(
        "/signin/link", data={"token": token, "csrf": csrf_of(page2.text)}, follow_redirects=False
    )
    assert replay.status_code == 401


def test_a_link_used_by_two_browsers_at_once_makes_one_session(studio: Studio) -> None:
    token = studio.link("A", "ana", "viewer")
    browsers = [studio.browser() for _ in range(6)]
    pages = [b.get(f"/signin/link?token={token}") for b in browsers]
    results: list[int] = []

    def use(index: int) -> None:
        response = browsers[index].post(
            "/signin/link",
            data={"token": token, "csrf": csrf_of(pages[index].text)},
            follow_redirects=False,
        )
        results.append(response.status_code)

    threads = [threading.Thread(target=use, args=(i,)) for i in range(len(browsers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results).count(303) == 1, results


def test_an_expired_link_is_refused(studio: Studio) -> None:
    token = studio.link("A", "ana", "viewer")
    with studio.db.session() as session:
        row = session.query(StudioLinkRow).one()
        row.expires_at = row.created_at - timedelta(seconds=1)
    assert studio.browser().get(f"/signin/link?token={token}").status_code == 401


def test_sign_out_ends_the_session(studio: Studio) -> None:
    browser = studio.signed_in_as("A", "ana", "viewer")
    cookie = browser.cookies.get("bl_session")
    response = studio.post_form(browser, "/runs", "/signout", {})
    assert response.status_code == 303
    other = studio.browser()
    other.cookies.set("bl_session", cookie)
    assert other.get("/runs", follow_redirects=False).status_code == 303


def test_a_revoked_key_ends_its_sessions(studio: Studio) -> None:
    admin = studio.key("A", "admin")
    browser, key = studio.signed_in_with_key("A", "viewer")
    key_id = "key_" + key.split("_")[1]
    api = studio.browser()
    revoked = api.delete(f"/v1/keys/{key_id}", headers={"Authorization": f"Bearer {admin}"})
    assert revoked.status_code == 200, revoked.text
    assert browser.get("/runs", follow_redirects=False).status_code == 303


def test_a_form_without_its_csrf_token_is_refused(studio: Studio) -> None:
    key = studio.key("A", "viewer")
    browser = studio.browser()
    browser.get("/signin")
    for data in ({"key": key}, {"key": key, "csrf": "forged"}):
        response = browser.post("/signin", data=data, follow_redirects=False)
        assert response.status_code == 403
        assert "CSRF" in response.text
    signed = studio.signed_in_as("A", "ana", "viewer")
    assert signed.post("/signout", data={}, follow_redirects=False).status_code == 403
    # the token of another session does not do either
    other = studio.signed_in_as("A", "lee", "viewer")
    token = csrf_of(other.get("/runs").text)
    assert signed.post("/signout", data={"csrf": token}).status_code == 403
    assert signed.get("/runs").status_code == 200


def test_next_never_leaves_the_site(studio: Studio) -> None:
    key = studio.key("A", "viewer")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil", "javascript:x"):
        browser = studio.browser()
        page = browser.get("/signin")
        response = browser.post(
            "/signin",
            data={"key": key, "csrf": csrf_of(page.text), "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/chat", target


def test_studio_link_command_prints_a_link_and_refuses_bad_input(
    studio: Studio, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "studio", "link", "--tenant", "A", "--principal", "ana.lima", "--role", "approver"
    )
    assert code == 0, err
    url = re.search(r"http://127\.0\.0\.1:8000/signin/link\?token=(\S+)", out)
    assert url
    browser = studio.browser()
    page = browser.get(f"/signin/link?token={url.group(1)}")
    assert page.status_code == 200 and "ana.lima" in page.text
    for args in (
        ["--tenant", "A", "--principal", "ana", "--role", "root"],
        ["--tenant", "a b", "--principal", "ana"],
        ["--tenant", "A", "--principal", " "],
        ["--tenant", "A", "--principal", "<b>ana</b>"],
    ):
        code, _, err = run_cli(capsys, "studio", "link", *args)
        assert code == 2 and err.startswith("brandloop: error:") and err.count("\n") == 1
