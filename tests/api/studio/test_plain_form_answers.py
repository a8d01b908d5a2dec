"""A refused studio field is named with what it takes in plain words, never pydantic's; form
bytes that are not UTF-8 are refused as the JSON API refuses bad text (a 422 page, nothing
stored); HEAD answers where GET does; a 405 or a 500 on a studio path is a page for a browser and
problem+json for a client that asks for JSON (docs/studio.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from brandloop.registry.models_service import JobRow, ThreadRow
from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of, make_run

PYDANTIC = ("Input should", "String should", "unable to parse")
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def _plain(page: Any, words: str) -> None:
    assert page.status_code == 422, page.text[:400]
    assert words in page.text, page.text[-800:]
    assert not any(p in page.text for p in PYDANTIC), page.text[-800:]


def test_refused_fields_are_named_in_plain_words(studio: Studio, api: Callable[..., Any]) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    ana = studio.signed_in_as("A", "ana", "creator")
    token = csrf_of(ana.get("/chat").text)
    base = {"csrf": token, "brand": "Acme Coffee", "size": "256x256", "message": "a cup"}
    _plain(ana.post("/chat", data={**base, "count": "0"}), "Images: takes a number of at least 1")
    _plain(ana.post("/chat", data={**base, "count": "9"}), "Images: takes a number of at most 8")
    _plain(ana.post("/chat", data={**base, "count": "x"}), "Images: takes a whole number")
    _plain(
        ana.post("/chat", data={**base, "title": "t" * 201}),
        "Title: takes at most 200 characters",
    )
    _plain(ana.get("/runs?page=x"), "page: takes a whole number")
    _plain(ana.get("/runs?page=0"), "page: takes a number of at least 1")
    with studio.db.session() as session:
        assert session.query(ThreadRow).count() == 0


@pytest.mark.parametrize("bad", ["%ED%A0%80", "%FF%FE", "ok%C3"])
def test_form_bytes_that_are_not_utf8_are_refused_and_nothing_is_stored(
    studio: Studio, api: Callable[..., Any], bad: str
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    ana = studio.signed_in_as("A", "ana", "creator")
    token = csrf_of(ana.get("/chat").text)
    body = f"csrf={token}&brand=Acme+Coffee&size=256x256&message=a+cup&title={bad}"
    page = ana.post(
        "/chat",
        content=body.encode("ascii"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert page.status_code == 422, page.text[:400]
    assert "Title: holds bytes that are not UTF-8" in page.text
    with studio.db.session() as session:
        assert session.query(ThreadRow).count() == 0
        assert session.query(JobRow).count() == 0
    # a U+FFFD typed as such is text like any other
    typed = ana.post(
        "/chat",
        data={"csrf": token, "brand": "Acme Coffee", "size": "256x256", "message": "a cup",
              "title": "\ufffd"},
        follow_redirects=False,
    )  # fmt: skip
    assert typed.status_code == 303, typed.text[:400]


def test_head_answers_where_get_does(studio: Studio, api: Callable[..., Any]) -> None:
    run = make_run(studio, api)
    sha = run["result"]["images"][0]["sha256"]
    vic = studio.signed_in_as("A", "vic", "viewer")
    for url in (f"/thumbs/256/{sha}", f"/images/{sha}"):
        got = vic.get(url)
        head = vic.head(url)
        assert got.status_code == 200 and head.status_code == 200, (url, head.status_code)
        assert head.content == b""
        assert head.headers["etag"] == got.headers["etag"]
        assert head.headers["content-type"] == got.headers["content-type"]


def test_a_405_on_a_studio_path_is_a_page_for_a_browser(studio: Studio) -> None:
    vic = studio.signed_in_as("A", "vic", "viewer")
    page = vic.request("DELETE", "/runs", headers=HTML)
    assert page.status_code == 405
    assert page.headers["content-type"].startswith("text/html")
    assert "GET" in page.headers["allow"] and "<h1" in page.text
    assert "Content-Security-Policy" in page.headers
    problem = vic.request("DELETE", "/runs", headers={"Accept": "application/problem+json"})
    assert problem.status_code == 405
    assert problem.headers["content-type"] == "application/problem+json"
    assert problem.json()["status"] == 405
    # the API keeps its problem+json whatever the client accepts
    assert vic.request("DELETE", "/v1/runs", headers=HTML).headers["content-type"] == (
        "application/problem+json"
    )


def test_a_500_on_a_studio_path_is_a_page_for_a_browser(
    studio: Studio, api: Callable[..., Any]
) -> None:
    run = make_run(studio, api)
    sha = run["result"]["images"][0]["sha256"]
    thumbs = studio.settings.data_dir / "thumbs"
    assert not thumbs.exists()
    thumbs.write_text("not a directory: every thumbnail write fails")  # a broken disk, say
    vic = studio.signed_in_as("A", "vic", "viewer")
    page = vic.get(f"/thumbs/256/{sha}", headers=HTML)
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html"), page.text[:300]
    assert "an internal error occurred" in page.text and "Traceback" not in page.text
    problem = vic.get(f"/thumbs/512/{sha}", headers={"Accept": "application/problem+json"})
    assert problem.status_code == 500
    assert problem.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/nonexistent", 404),
        ("/chat/thr_83b29f58a8dd44cc9565/zzz", 404),
        ("/runs/..%2f..%2fetc", 404),
        ("/chat/%00", 400),
        ("/runs/%FF", 400),
    ],
)
def test_a_path_no_page_serves_is_a_page_for_a_browser(
    studio: Studio, path: str, status: int
) -> None:
    """An outside tester's browser got problem+json for these (docs/studio.md: every studio
    answer to a browser is a page); a client asking for JSON, and every API path, still get
    problem+json."""
    vic = studio.signed_in_as("A", "vic", "viewer")
    page = vic.get(path, headers=HTML)
    assert page.status_code == status
    assert page.headers["content-type"].startswith("text/html"), page.text[:300]
    assert "<h1" in page.text and "Content-Security-Policy" in page.headers
    problem = vic.get(path, headers={"Accept": "application/problem+json"})
    assert problem.status_code == status
    assert problem.headers["content-type"] == "application/problem+json"
    api = vic.get("/v1" + path, headers=HTML)
    assert api.status_code == status and api.headers["content-type"] == ("application/problem+json")


def test_a_follow_up_making_the_brief_too_long_says_why_in_the_studio(
    studio: Studio, api: Callable[..., Any]
) -> None:
    """The API's 422 names the length and the limit; the studio's page said only "content: is
    not a value this field takes" to an outside tester whose own message was short."""
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    ana = studio.signed_in_as("A", "ana", "creator")
    token = csrf_of(ana.get("/chat").text)
    started = ana.post(
        "/chat",
        data={"csrf": token, "brand": "Acme Coffee", "size": "256x256",
              "message": "a cup " + "warm " * 790},
        follow_redirects=False,
    )  # fmt: skip
    assert started.status_code == 303, started.text[:400]
    thread = started.headers["location"].split("#")[0]
    page = ana.post(
        f"{thread}/messages",
        data={"csrf": csrf_of(ana.get(thread).text),
              "content": "add " + "a tall glass of fresh orange juice beside it " * 3},
    )  # fmt: skip
    _plain(page, "the limit is 4000: shorten the follow-up or start a new thread")
    assert "is not a value this field takes" not in page.text
