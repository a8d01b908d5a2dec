"""Failed studio sign-ins count in the per-address throttle of failed /v1 authentications
(docs/http-api.md: 20 failures per client address): past it, a sign-in is a 429 page with
``Retry-After``, even with a good key, and the address's /v1 requests with a key are 429 too."""

from __future__ import annotations

from tests.api.studio.conftest import Studio, csrf_of

BURST = 20  # BRANDLOOP_API_AUTH_FAILURES_BURST's default


def test_failed_sign_ins_trip_the_per_address_throttle(studio: Studio) -> None:
    good = studio.key("A", "creator")
    browser = studio.browser()
    token = csrf_of(browser.get("/signin").text)
    codes = [
        browser.post(
            "/signin", data={"csrf": token, "key": f"bl_000000000000_guess{i}", "next": "/chat"}
        ).status_code
        for i in range(BURST)
    ]
    assert codes == [401] * BURST
    refused = browser.post("/signin", data={"csrf": token, "key": "bl_000000000000_one_more"})
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1
    assert "too many failed sign-ins" in refused.text
    assert refused.headers["content-type"].startswith("text/html")
    # a good key is not even looked up while the address is throttled: no session is made
    blocked = browser.post(
        "/signin", data={"csrf": token, "key": good, "next": "/chat"}, follow_redirects=False
    )
    assert blocked.status_code == 429 and "bl_session" not in blocked.headers.get("set-cookie", "")
    # the one-time link form is the same door
    link = studio.link("A", "ana", "viewer")
    assert browser.post("/signin/link", data={"csrf": token, "token": link}).status_code == 429
    # and the same bucket as /v1: a request with a key from this address is refused too
    api = browser.get("/v1/keys/me", headers={"Authorization": f"Bearer {good}"})
    assert api.status_code == 429 and api.json()["type"].endswith("rate-limited")


def test_a_few_failed_sign_ins_leave_a_good_key_working(studio: Studio) -> None:
    good = studio.key("A", "creator")
    browser = studio.browser()
    token = csrf_of(browser.get("/signin").text)
    for i in range(3):
        assert browser.post("/signin", data={"csrf": token, "key": f"bad{i}"}).status_code == 401
    signed = browser.post(
        "/signin", data={"csrf": token, "key": good, "next": "/chat"}, follow_redirects=False
    )
    assert signed.status_code == 303, signed.text
