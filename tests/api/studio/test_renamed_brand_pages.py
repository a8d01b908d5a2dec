"""After a brand is renamed, the studio names it as it is named now and links to it by that
name, so every link answers; a brand the tenant lacks is a 404 page on the agreement page too,
as GET /v1/review/agreement answers (docs/studio.md)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.api.studio.conftest import Studio, csrf_of, make_run


def _rename(studio: Studio, api: Callable[..., Any]) -> None:
    renamed = api(
        "POST",
        "/v1/brands/Acme Coffee/rename",
        studio.key("A", "admin"),
        json={"name": "Acme Roasters"},
    )
    assert renamed.status_code == 200, renamed.text


def test_a_run_of_a_renamed_brand_links_to_its_gallery_by_the_current_name(
    studio: Studio, api: Callable[..., Any]
) -> None:
    run = make_run(studio, api)
    _rename(studio, api)
    vic = studio.signed_in_as("A", "vic", "viewer")
    page = vic.get(f"/runs/{run['run_id']}").text
    link = re.search(r'href="(/runs\?brand=[^"]*)"', page)
    assert link, page
    assert link.group(1) == "/runs?brand=Acme%20Roasters"
    gallery = vic.get(link.group(1).replace("&amp;", "&"))
    assert gallery.status_code == 200, gallery.text[-500:]
    assert run["run_id"] in gallery.text


def test_the_thread_list_names_a_renamed_brand_as_the_thread_page_does(
    studio: Studio, api: Callable[..., Any]
) -> None:
    make_run(studio, api)  # adds the brand
    ana = studio.signed_in_as("A", "ana", "creator")
    started = ana.post(
        "/chat",
        data={"csrf": csrf_of(ana.get("/chat").text), "brand": "Acme Coffee",
              "size": "256x256", "title": "launch", "message": "a cup"},
        follow_redirects=False,
    )  # fmt: skip
    assert started.status_code == 303, started.text
    thread_url = started.headers["location"].split("?")[0].split("#")[0]
    _rename(studio, api)
    for url in ("/chat", thread_url):
        nav = ana.get(url).text.split('<nav aria-label="Threads">', 1)[1].split("</nav>", 1)[0]
        assert "Acme Roasters" in nav and "Acme Coffee" not in nav, (url, nav)
    assert "Acme Roasters" in ana.get(thread_url).text.split("<h1", 1)[1].split("</h1>", 1)[0]


def test_the_agreement_page_of_a_brand_the_tenant_lacks_is_a_404_page(
    studio: Studio, api: Callable[..., Any]
) -> None:
    make_run(studio, api)
    vic = studio.signed_in_as("A", "vic", "viewer")
    key = studio.key("A", "viewer")
    assert api("GET", "/v1/review/agreement?brand=Nope", key).status_code == 404
    page = vic.get("/agreement?brand=Nope")
    assert page.status_code == 404, page.text[-500:]
    assert "unknown brand" in page.text and "not measured" not in page.text
    assert vic.get("/agreement?brand=Acme Coffee").status_code == 200
    assert vic.get("/agreement").status_code == 200
