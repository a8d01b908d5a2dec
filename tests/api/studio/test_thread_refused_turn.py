"""The studio's thread page shows a refused turn as refused (docs/studio.md, Chat): the turn
whose run was refused carries a "refused: <reason>" marker, the reason the API's ``refused``
gives for that turn, on the page and in the live result fragment; no other turn does. Before
session 24 the page showed the refusal only inside the turn's reply line ("failed: 0 image(s),
$0.000. refused by ..."), never the thread's ``refused`` field."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of
from tests.api.studio.test_chat import _wait_jobs

MARKER = re.compile(r'<p class="refused[^"]*"[^>]*><strong>refused:</strong> (?:<bdi>)?([^<]*)<')


def _marked(page: str) -> list[str]:
    """The reason of each "refused:" marker on ``page``, as text."""
    return [html.unescape(reason).strip() for reason in MARKER.findall(page)]


def test_a_refused_turn_is_marked_refused_with_the_threads_reason(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    browser = studio.signed_in_as("A", "ana", "creator")
    thread_url = (
        browser.post(
            "/chat",
            data={
                "csrf": csrf_of(browser.get("/chat").text),
                "brand": "Acme Coffee",
                "message": "a croissant beside a coffee cup on a marble counter",
                "size": "64x64",
            },
            follow_redirects=False,
        )
        .headers["location"]
        .split("#")[0]
    )
    thread_id = thread_url.rsplit("/", 1)[-1]
    _wait_jobs(studio, thread_id)
    page = browser.get(thread_url).text
    assert not MARKER.search(page), page
    sent = browser.post(
        f"/chat/{thread_id}/messages",
        data={"csrf": csrf_of(page), "content": "add a jar of instant coffee"},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    _wait_jobs(studio, thread_id)

    convo = api("GET", f"/v1/threads/{thread_id}", studio.key("A", "viewer")).json()
    first, second = convo["messages"]
    assert first["refused"] is None and "instant coffee" in second["refused"], convo
    page = browser.get(thread_url).text
    turns = page.split('<li id="latest"')
    assert len(turns) == 2 and not MARKER.search(turns[0]), page
    assert _marked(turns[1]) == [second["refused"]], turns[1]
    # the live fragment the page reloads as the turn finishes says the same
    fragment = browser.get(f"/chat/jobs/{second['job']['id']}/result").text
    assert _marked(fragment) == [second["refused"]], fragment
    first_fragment = browser.get(f"/chat/jobs/{first['job']['id']}/result").text
    assert not MARKER.search(first_fragment), first_fragment
