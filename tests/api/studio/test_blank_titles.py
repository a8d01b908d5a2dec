"""A chat thread's title or a campaign's name that shows nothing (zero-width characters, the
word joiner, spaces) is no title (docs/studio.md): the /chat form titles such a thread with its
brief, as it does one left untitled, and a list never shows an empty, unclickable link - an
outside tester's ``"\\u2060\\u200b"`` thread and ``"\\u200b"`` campaign were both."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from brandloop.registry.models_service import CampaignRow, ThreadRow
from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of

BLANK = ["\u200b", "\u2060\u200b", " \ufeff "]


@pytest.mark.parametrize("blank", BLANK)
def test_a_thread_started_with_an_invisible_title_is_titled_with_its_brief(
    studio: Studio, api: Callable[..., Any], blank: str
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    ana = studio.signed_in_as("A", "ana", "creator")
    started = ana.post(
        "/chat",
        data={"csrf": csrf_of(ana.get("/chat").text), "brand": "Acme Coffee", "title": blank,
              "message": "a cup on a saucer", "size": "64x64"},
        follow_redirects=False,
    )  # fmt: skip
    assert started.status_code == 303, started.text
    thread_id = started.headers["location"].split("#")[0].rsplit("/", 1)[-1]
    with studio.db.session() as session:
        row = session.get(ThreadRow, thread_id)
        assert row is not None and row.title == "a cup on a saucer"
    page = ana.get(f"/chat/{thread_id}").text
    assert f'<a href="/chat/{thread_id}" aria-current="page"><bdi>a cup on a saucer</bdi>' in page


def test_a_name_or_title_stored_blank_is_listed_by_its_id(studio: Studio) -> None:
    """Rows an older release stored with a blank name or title still get a link with text."""
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    with studio.db.session() as session:
        session.add(
            CampaignRow(id="cmp_blank", tenant="A", name="\u200b", brand="Acme Coffee",
                        budget_usd=1.0, assets=[], created_at=moment)
        )  # fmt: skip
        session.add(
            ThreadRow(id="thr_blank", tenant="A", brand="Acme Coffee", brand_id=None,
                      title="\u2060\u200b", created_at=moment)
        )  # fmt: skip
    vic = studio.signed_in_as("A", "vic", "viewer")
    assert '<a href="/campaigns/cmp_blank"><bdi>cmp_blank</bdi></a>' in vic.get("/campaigns").text
    assert "<title>⁨Campaign cmp_blank⁩" in vic.get("/campaigns/cmp_blank").text
    thread = vic.get("/chat/thr_blank").text
    assert '<a href="/chat/thr_blank" aria-current="page"><bdi>thr_blank</bdi>' in thread
    assert '<h1 id="thread-h" tabindex="-1"><bdi>Chat</bdi>' in thread
