"""The studio in a real headless Chromium (Debian's package, driven by Playwright) against a
real ``brandloop serve``: sign in; chat a brief, watch it live and revise it; approve a review
item and see the run finish; compare template versions and approve with a second principal,
then reject one giving the form's reason;
tenant B sees none of tenant A's pages or images; a form without its CSRF token is refused;
axe-core finds no serious or critical violation on any page, and no CSP violation is logged."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.api.studio.browser import (
    Site,
    axe_violations,
    brand_json,
    chromium,
    chromium_path,
    sign_in_with_link,
    site,
)

pytestmark = [pytest.mark.server, pytest.mark.slow]
expect.set_options(timeout=60_000)  # a shared 2-core CI machine: runs take seconds


@pytest.fixture(scope="module")
def studio_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    import os

    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run must install it (scripts/services.sh)")
        pytest.skip("chromium is not installed; bash scripts/services.sh start installs it")
    with site(tmp_path_factory.mktemp("studio") / "data", sleep_s=0.8) as running:
        yield running


@pytest.fixture(scope="module")
def browser(studio_site: Site) -> Iterator[Browser]:
    with sync_playwright() as playwright, chromium(playwright) as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    made = context.new_page()
    made.set_default_timeout(60_000)
    yield made
    context.close()


def as_user(browser: Browser, studio_site: Site, tenant: str, principal: str, role: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    made = context.new_page()
    made.set_default_timeout(60_000)
    sign_in_with_link(made, studio_site.link(tenant, principal, role))
    return made


def start_thread(page: Page, url: str, brand: str, brief: str, title: str = "") -> str:
    page.goto(url + "/chat")
    page.get_by_label("Brand").select_option(brand)
    if title:
        page.get_by_label("Title").fill(title)
    page.get_by_label("Brief").fill(brief)
    page.get_by_label("Size").fill("256x256")
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r".*/chat/thr_\w+"))
    return page.url.split("#")[0]  # the thread's page (Start answers with #thread-h)


def test_sign_in_with_a_key_and_with_a_link(page: Page, studio_site: Site) -> None:
    page.goto(studio_site.url + "/runs")
    page.wait_for_url("**/signin?next=*")
    page.get_by_label("API key").fill(studio_site.key("A", "viewer"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/runs")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["bl_session"]["httpOnly"] and cookies["bl_session"]["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin")
    sign_in_with_link(page, studio_site.link("A", "ana", "creator"))
    expect(page.get_by_text("ana · A · creator")).to_be_visible()


def test_chat_a_brief_watch_it_live_and_revise_it(browser: Browser, studio_site: Site) -> None:
    page = as_user(browser, studio_site, "A", "ana", "creator")
    start_thread(page, studio_site.url, "Acme Coffee", "a steaming mug on a wooden table")
    live = page.locator(".live li")
    expect(live.first).to_be_visible()  # the run's events arrive over SSE as it works
    first = page.locator('.turn-result img[src^="/thumbs/1024/"]')
    expect(first.first).to_be_visible(timeout=90_000)  # the image appears without a reload
    assert "a steaming mug" in page.content()
    page.get_by_label("Revise").fill("warmer, and drop the mug")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Removed to the negative prompt: mug")).to_be_visible()
    expect(page.locator("ins", has_text="a wooden table")).to_be_visible()
    expect(page.locator('.turn-result img[src^="/thumbs/1024/"]')).to_have_count(2, timeout=90_000)


def test_a_thread_with_many_waiting_turns_streams_two_at_a_time_and_stays_usable(
    browser: Browser, studio_site: Site
) -> None:
    """Seven turns not finished: each held its own event stream, Chromium's six connections
    per host were all taken, and leaving the page took 42 s (outside tester). At most two
    stream at once, oldest first; the rest start as those end, and every turn still ends."""
    page = as_user(browser, studio_site, "A", "ana", "creator")
    url = start_thread(page, studio_site.url, "Acme Coffee", "a cup of tea by a window")
    thread_id = url.rsplit("/", 1)[-1]
    key = {"Authorization": f"Bearer {studio_site.key('A', 'creator')}"}
    for n in range(6):  # follow-ups wait their turn
        answer = httpx.post(
            f"{studio_site.url}/v1/threads/{thread_id}/messages",
            json={"content": f"variation {n}: warmer"},
            headers=key,
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
    page.goto(url)
    live = page.locator("[data-events]")
    assert live.count() >= 5  # most turns are still waiting
    peak = 0
    for _ in range(40):
        peak = max(peak, page.locator("[data-streaming]").count())
        page.wait_for_timeout(100)
    assert 1 <= peak <= 2, peak
    started = time.monotonic()
    page.goto(studio_site.url + "/campaigns")  # navigation is not queued behind the streams
    assert time.monotonic() - started < 10
    page.goto(url)
    expect(page.locator("[data-events]:not([data-ended])")).to_have_count(0, timeout=240_000)


def test_a_title_with_no_spaces_wraps_inside_the_thread_list(
    browser: Browser, studio_site: Site
) -> None:
    """An outside tester's 200-letter title ran out of the sidebar, under the chat column."""
    page = as_user(browser, studio_site, "A", "ana", "creator")
    start_thread(page, studio_site.url, "Acme Coffee", "a cup on a saucer", title="t" * 200)
    link = page.locator(".threads li a", has_text="tttt").first
    expect(link).to_be_visible()
    sidebar = page.locator(".chat > nav").bounding_box()
    box = link.bounding_box()
    assert sidebar is not None and box is not None
    assert box["x"] + box["width"] <= sidebar["x"] + sidebar["width"] + 1, (box, sidebar)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_brief_with_no_spaces_wraps_inside_its_campaign_card(
    page: Page, studio_site: Site
) -> None:
    """An outside tester's 300-letter brief ran out of its card: the page was 4782px wide."""
    made = studio_site.api(
        "POST", "/v1/campaigns", "A", "creator",
        json={"name": "long word", "brand": "Acme Coffee", "budget_usd": 0.2,
              "assets": [{"brief": "W" * 300, "formats": ["64x64"]}]},
    )  # fmt: skip
    assert made.status_code == 202, made.text
    sign_in_with_link(page, studio_site.link("A", "vic", "viewer"))
    page.goto(f"{studio_site.url}/campaigns/{made.json()['id']}")
    brief = page.locator(".board .brief", has_text="WWWW")
    expect(brief).to_be_visible()
    card = page.locator(".board > li").first.bounding_box()
    box = brief.bounding_box()
    assert card is not None and box is not None
    assert box["x"] + box["width"] <= card["x"] + card["width"] + 1, (box, card)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_approve_a_review_item_and_see_the_run_finish(browser: Browser, studio_site: Site) -> None:
    ana = as_user(browser, studio_site, "A", "ana", "creator")
    start_thread(ana, studio_site.url, "Bloom Skincare", "a serum bottle on marble")
    # a creator is told the run waits, with no link to the review page (a 403 for her)
    expect(ana.locator("p.reply")).to_contain_text("awaiting review", timeout=90_000)
    expect(ana.get_by_role("link", name="review it")).to_have_count(0)
    lee = as_user(browser, studio_site, "A", "lee", "approver")
    lee.goto(studio_site.url + "/review")
    lee.locator(".run-card a").first.click()
    expect(lee.locator('img[src^="/thumbs/1024/"]').first).to_be_visible()
    lee.locator("body").click(position={"x": 5, "y": 5})  # focus off any field
    lee.keyboard.press("a")  # the approve shortcut
    lee.wait_for_url(re.compile(r".*/runs/run_\w+$"))
    expect(lee.locator(".summary .status")).to_have_text("succeeded")
    expect(lee.get_by_text("approved by lee")).to_be_visible()


def test_compare_template_versions_and_approve_with_a_second_principal(
    browser: Browser, studio_site: Site
) -> None:
    ana = as_user(browser, studio_site, "A", "ana", "approver")
    ana.goto(studio_site.url + "/templates/brand-hero")
    ana.get_by_label("Body", exact=True).fill("{{ brief }}. {{ palette_clause }}. soft daylight.")
    ana.get_by_label("Message").fill("daylight")
    ana.get_by_role("button", name="Add draft").click()
    ana.get_by_label("Left").select_option("1")
    ana.get_by_label("Right").select_option("2")
    ana.get_by_role("button", name="Compare").click()
    expect(ana.locator("table.sbs ins").first).to_be_visible()
    expect(ana.locator("table.sbs del").first).to_be_visible()
    ana.get_by_role("button", name="Submit v2").click()
    # four eyes: the author's Approve and Reject are disabled, the reason beside them
    expect(ana.get_by_role("button", name="Approve v2")).to_be_disabled()
    expect(ana.get_by_role("button", name="Reject v2")).to_be_disabled()
    expect(ana.locator("#four-eyes-2")).to_contain_text("you wrote v2")
    lee = as_user(browser, studio_site, "A", "lee", "approver")
    lee.goto(studio_site.url + "/templates/brand-hero")
    lee.get_by_role("button", name="Approve v2").click()
    expect(lee.locator("tr", has_text="v2").locator(".status")).to_have_text("approved")
    # a rejection: the form asks why (a labelled field the browser requires), axe-clean
    ana.goto(studio_site.url + "/templates/brand-hero")
    ana.get_by_label("Message").fill("neon")
    ana.get_by_role("button", name="Add draft").click()
    ana.get_by_role("button", name="Submit v3").click()
    lee.goto(studio_site.url + "/templates/brand-hero")
    serious = [v for v in axe_violations(lee) if v["impact"] in ("serious", "critical")]
    assert not serious, serious
    lee.get_by_role("button", name="Reject v3").click()  # blank: the browser asks for a reason
    expect(lee.locator("tr", has_text="v3").locator(".status")).to_have_text("in review")
    lee.get_by_label("Why reject v3?").fill("neon is off-brand")
    lee.get_by_role("button", name="Reject v3").click()
    expect(lee.locator("tr", has_text="v3").locator(".status")).to_have_text("rejected")


def test_tenant_b_sees_none_of_tenant_as_pages_or_images(
    browser: Browser, studio_site: Site
) -> None:
    made = studio_site.api(
        "POST", "/v1/generations?wait=120", "A", "creator",
        json={"brief": "a cup", "brand": "Acme Coffee", "size": "128x128"},
    ).json()  # fmt: skip
    run_id, sha = made["run_id"], made["result"]["images"][0]["sha256"]
    bob = as_user(browser, studio_site, "B", "bob", "admin")
    for path in (f"/runs/{run_id}", f"/thumbs/256/{sha}", f"/images/{sha}", f"/review/{run_id}"):
        response = bob.goto(studio_site.url + path)
        assert response is not None and response.status == 404, path
    bob.goto(studio_site.url + "/runs")
    assert run_id not in bob.content()
    bob.goto(studio_site.url + "/chat")
    assert "Acme Coffee" not in bob.content()
    fetched = bob.request.get(f"{studio_site.url}/thumbs/256/{sha}")
    assert fetched.status == 404


def test_a_form_posted_without_its_csrf_token_is_refused(
    browser: Browser, studio_site: Site
) -> None:
    page = as_user(browser, studio_site, "A", "ana", "creator")
    page.goto(studio_site.url + "/brands/Acme Coffee")
    page.get_by_label("New note").fill("no neon")
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_role("alert")).to_contain_text("CSRF")
    page.goto(studio_site.url + "/brands/Acme Coffee")
    assert "no neon" not in page.content()


PAGES = [
    "/signin",
    "/chat",
    "/runs",
    "/review",
    "/review/pairwise",
    "/agreement",
    "/templates",
    "/templates/brand-hero?a=1&b=1",
    "/campaigns",
    "/brands",
    "/brands/Acme Coffee",
    "/evals",
    "/costs",
]


def test_every_page_passes_axe_with_keyboard_navigation_and_no_csp_violation(
    browser: Browser, studio_site: Site
) -> None:
    made = studio_site.api(
        "POST", "/v1/generations?wait=120", "A", "creator",
        json={"brief": "a cup of tea", "brand": "Acme Coffee", "size": "128x128"},
    ).json()  # fmt: skip
    page = as_user(browser, studio_site, "A", "axel", "admin")
    threads = studio_site.api("GET", "/v1/threads", "A", "viewer").json()
    extra = [f"/runs/{made['run_id']}"] + [f"/chat/{t['id']}" for t in threads[:1]]
    refused: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            refused.append(message.text)

    page.on("console", on_console)
    failures: dict[str, list[dict[str, object]]] = {}
    for path in [*PAGES, *extra]:
        response = page.goto(studio_site.url + path)
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
        serious = [v for v in axe_violations(page) if v["impact"] in ("serious", "critical")]
        if serious:
            failures[path] = serious
        # keyboard: the first Tab reaches the skip link, which moves focus to the content
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip", path
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main", path
    assert not failures, failures
    assert not refused, refused


def test_keyboard_start_focuses_the_new_conversation(browser: Browser, studio_site: Site) -> None:
    """After a keyboard-only Start, focus is on the new thread's heading, not <body>
    (outside tester); after Send, on the latest turn."""
    page = as_user(browser, studio_site, "A", "kim", "creator")
    page.goto(studio_site.url + "/chat")
    page.get_by_label("Brief").fill("a mug of cocoa by a window")
    page.get_by_label("Size").fill("256x256")
    page.get_by_role("button", name="Start").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/chat/thr_\w+"))
    page.wait_for_load_state("load")
    assert page.evaluate("document.activeElement.id") == "thread-h"
    page.get_by_label("Revise").focus()
    page.keyboard.type("warmer")
    page.get_by_role("button", name="Send").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/chat/thr_\w+#latest"))
    page.wait_for_load_state("load")
    assert page.evaluate("document.activeElement.id") == "latest"


def test_a_refused_gallery_filter_shows_why_instead_of_the_unfiltered_gallery(
    browser: Browser, studio_site: Site
) -> None:
    """A filter the server refuses through htmx (a brand renamed from another session while the
    gallery was open: 404) replaced nothing before session 35, and the unfiltered gallery
    stayed on screen with no word."""
    kit = brand_json("acme-coffee") | {"name": "Zest Soda"}
    assert studio_site.api("POST", "/v1/brands", "A", "admin", json=kit).status_code == 201
    studio_site.api(
        "POST", "/v1/generations?wait=120", "A", "creator",
        json={"brief": "a cup", "brand": "Acme Coffee", "size": "128x128"},
    )  # fmt: skip
    page = as_user(browser, studio_site, "A", "gus", "viewer")
    page.goto(studio_site.url + "/runs")
    expect(page.locator("#gallery .run-card").first).to_be_visible()
    renamed = studio_site.api(
        "POST", "/v1/brands/Zest Soda/rename", "A", "admin", json={"name": "Zest Pop"}
    )
    assert renamed.status_code == 200, renamed.text
    page.locator("select[name=brand]").select_option("Zest Soda")
    expect(page.locator("#gallery [role=alert]")).to_contain_text("unknown brand 'Zest Soda'")
    expect(page.locator("#gallery .run-card")).to_have_count(0)
    assert page.title().startswith("\u2068Runs")  # still the gallery's page
    page.locator("select[name=brand]").select_option("")  # and the gallery comes back
    expect(page.locator("#gallery .run-card").first).to_be_visible()


def test_after_back_the_gallery_filters_show_what_the_results_are_filtered_by(
    browser: Browser, studio_site: Site
) -> None:
    """htmx's history restores the page's markup, in which each select showed "any": after Back
    the results were filtered by status and every filter said "any" (before session 35)."""
    studio_site.api(
        "POST", "/v1/generations?wait=120", "A", "creator",
        json={"brief": "a tin of tea", "brand": "Acme Coffee", "size": "128x128"},
    )  # fmt: skip
    page = as_user(browser, studio_site, "A", "hal", "viewer")
    page.goto(studio_site.url + "/runs")
    page.locator("select[name=status]").select_option("succeeded")
    page.wait_for_url(re.compile(r".*status=succeeded"))
    page.locator("select[name=brand]").select_option("Acme Coffee")
    page.wait_for_url(re.compile(r".*brand=Acme"))
    page.go_back()
    page.wait_for_url(re.compile(r".*brand=&.*status=succeeded"))
    expect(page.locator("select[name=status]")).to_have_value("succeeded")
    expect(page.locator("select[name=brand]")).to_have_value("")
    page.go_back()
    page.wait_for_url(re.compile(r".*/runs$"))
    expect(page.locator("select[name=status]")).to_have_value("")
    page.go_forward()
    page.wait_for_url(re.compile(r".*status=succeeded"))
    expect(page.locator("select[name=status]")).to_have_value("succeeded")
