"""Campaigns and the chat's thread list page 24 at a time, as the runs gallery does
(docs/studio.md): an outside tester found /campaigns capped at 50 with ``?page=2`` showing the
same 50, and the thread list capped at 100, so older campaigns and threads (the one being viewed
included) could not be reached; on a 390px screen the conversation sat below every link."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from brandloop.registry.models_service import CampaignRow, ThreadRow
from tests.api.studio.conftest import Studio

MADE = 30
START = datetime(2026, 1, 1, tzinfo=UTC)


def _campaigns(studio: Studio, tenant: str = "A") -> None:
    """``MADE`` campaigns, ``camp-00`` the oldest, a minute apart (no asset: listing only)."""
    with studio.db.session() as session:
        for i in range(MADE):
            session.add(
                CampaignRow(
                    id=f"cmp_{i:02d}", tenant=tenant, name=f"camp-{i:02d}", brand="Acme Coffee",
                    budget_usd=1.0, assets=[], created_at=START + timedelta(minutes=i),
                )
            )  # fmt: skip


def _threads(studio: Studio, tenant: str = "A") -> None:
    """``MADE`` threads, ``thr_00`` the oldest, a minute apart."""
    with studio.db.session() as session:
        for i in range(MADE):
            session.add(
                ThreadRow(
                    id=f"thr_{i:02d}", tenant=tenant, brand="Acme Coffee", brand_id=None,
                    title=f"talk-{i:02d}", created_at=START + timedelta(minutes=i),
                )
            )  # fmt: skip


def _names(html: str, prefix: str) -> set[str]:
    return set(re.findall(rf"{prefix}-\d\d", html))


def test_campaigns_past_the_first_24_are_on_page_two_and_the_oldest_is_reachable(
    studio: Studio,
) -> None:
    _campaigns(studio)
    browser = studio.signed_in_as("A", "vic", "viewer")
    first = browser.get("/campaigns")
    assert first.status_code == 200
    assert _names(first.text, "camp") == {f"camp-{i:02d}" for i in range(6, MADE)}
    assert 'rel="next" href="/campaigns?page=2"' in first.text and "Page 1 of 2" in first.text
    second = browser.get("/campaigns?page=2")
    assert _names(second.text, "camp") == {f"camp-{i:02d}" for i in range(6)}
    assert 'href="/campaigns/cmp_00"' in second.text and 'rel="prev"' in second.text
    assert browser.get("/campaigns?page=0").status_code == 422


def test_the_thread_list_pages_like_the_other_lists(studio: Studio) -> None:
    _threads(studio)
    browser = studio.signed_in_as("A", "vic", "viewer")
    first = browser.get("/chat").text
    assert _names(first, "talk") == {f"talk-{i:02d}" for i in range(6, MADE)}
    assert 'href="/chat?page=2"' in first
    assert _names(browser.get("/chat?page=2").text, "talk") == {f"talk-{i:02d}" for i in range(6)}


def test_a_thread_page_lists_the_page_of_threads_that_holds_it(studio: Studio) -> None:
    _threads(studio)
    browser = studio.signed_in_as("A", "vic", "viewer")
    oldest = browser.get("/chat/thr_00")
    assert oldest.status_code == 200
    assert '<a href="/chat/thr_00" aria-current="page">' in oldest.text
    assert "Page 2 of 2" in oldest.text and 'href="/chat/thr_00?page=1"' in oldest.text
    # paging the list from a thread's page stays on that thread
    newest = browser.get("/chat/thr_00?page=1").text
    assert "talk-29" in newest and 'href="/chat/thr_00?page=2"' in newest
    assert '<a href="/chat/thr_00"' not in newest.split('aria-label="Threads"', 1)[1]


def test_a_thread_page_puts_the_conversation_before_the_thread_list(studio: Studio) -> None:
    """Keyboard and narrow-screen users reach the conversation and New thread first."""
    _threads(studio)
    browser = studio.signed_in_as("A", "vic", "viewer")
    for path in ("/chat/thr_29", "/chat"):
        html = browser.get(path).text
        conversation = html.index("<section")
        threads = html.index('aria-label="Threads"')
        assert conversation < threads, path
        assert html.index('href="/chat">New thread') < html.index('href="/chat/thr_29"'), path
