"""A turn the brand's conflict policy answered with a question (``conflicts: ask``) is shown
as that question, the turn's ``reply`` in ``GET /v1/threads/{id}``, on the thread page and in
the live result, never as ``failed: 0 image(s), $0.000. <question>`` (outside tester,
session 35)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of
from tests.api.studio.test_chat import _wait_jobs


def test_the_brands_question_is_shown_as_its_question_not_a_failure(
    studio: Studio, api: Callable[..., Any]
) -> None:
    folder = studio.settings.data_dir / "policies"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acme-coffee.yaml").write_text("conflicts: ask\n", encoding="utf-8")
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    browser = studio.signed_in_as("A", "ana", "creator")
    thread_url = (
        browser.post(
            "/chat",
            data={
                "csrf": csrf_of(browser.get("/chat").text),
                "brand": "Acme Coffee",
                "message": "a coffee cup on an orange table",
                "size": "64x64",
            },
            follow_redirects=False,
        )
        .headers["location"]
        .split("#")[0]
    )
    thread_id = thread_url.rsplit("/", 1)[-1]
    _wait_jobs(studio, thread_id)
    (turn,) = api("GET", f"/v1/threads/{thread_id}", studio.key("A", "viewer")).json()["messages"]
    question = turn["reply"]
    assert turn["refused"] is None and "Before I spend anything" in question, turn
    page = html.unescape(browser.get(thread_url).text)
    fragment = html.unescape(browser.get(f"/chat/jobs/{turn['job']['id']}/result").text)
    for shown in (page, fragment):
        assert f"<strong>asks:</strong> <bdi>{question}</bdi>" in shown, shown[-2000:]
        assert "failed:" not in shown and "0 image(s)" not in shown
        assert "refused:" not in shown
