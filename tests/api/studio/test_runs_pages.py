"""The Runs pages: the filtered, paginated gallery with server-side thumbnails, and the run
page (images, palette beside dominant colours, attempts against thresholds, decisions,
receipts; download, reproduce, resume), scoped to the signed-in tenant."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from typing import Any

from PIL import Image

from brandloop.api.studio.web import CSP
from brandloop.registry.models import RunRow
from tests.api.studio.conftest import Studio, make_run


def test_gallery_shows_thumbnails_never_full_pngs_and_filters(
    studio: Studio, api: Callable[..., Any]
) -> None:
    job = make_run(studio, api)
    browser = studio.signed_in_as("A", "ana", "viewer")
    page = browser.get("/runs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP
    assert job["run_id"] in page.text
    assert f"/thumbs/256/{job['result']['images'][0]['sha256']}" in page.text
    assert "/v1/artifacts/" not in page.text and "/images/" not in page.text
    assert job["run_id"] in browser.get("/runs?brand=Acme+Coffee&status=succeeded").text
    for narrowing in (
        "status=failed",
        "brand=Nobody",
        "model=procedural/none",
        "template=other",
        "since=2999-01-01",
    ):
        assert job["run_id"] not in browser.get(f"/runs?{narrowing}").text, narrowing
    # the model its accepted image came from: the bandit, seeded by the unseeded run's id, may
    # explore the studio tier first, so the draft tier is not certain to have been tried
    model = job["result"]["images"][0]["model"]
    assert job["run_id"] in browser.get(f"/runs?model={model}&since=2000-01-01").text
    # htmx asks for the grid only
    fragment = browser.get("/runs?brand=Acme+Coffee", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and job["run_id"] in fragment.text


def test_gallery_is_paginated(studio: Studio, api: Callable[..., Any]) -> None:
    make_run(studio, api)
    with studio.db.session() as session:
        template = session.query(RunRow).one()
        for index in range(30):
            session.add(
                RunRow(
                    id=f"run_fake{index:04d}",
                    tenant="A",
                    brand_name="Acme Coffee",
                    brief=f"brief {index}",
                    request=template.request,
                    status="failed",
                    created_at=template.created_at,
                )
            )
    browser = studio.signed_in_as("A", "ana", "viewer")
    first = browser.get("/runs")
    assert "31 runs" in first.text and "Page 1 of 2" in first.text
    assert len(re.findall(r'class="card run-card"', first.text)) == 24
    second = browser.get("/runs?page=2")
    assert len(re.findall(r'class="card run-card"', second.text)) == 7


def test_thumbnails_are_resized_cached_and_served_with_etags(
    studio: Studio, api: Callable[..., Any]
) -> None:
    job = make_run(studio, api)
    sha = job["result"]["images"][0]["sha256"]
    browser = studio.signed_in_as("A", "ana", "viewer")
    thumb = browser.get(f"/thumbs/256/{sha}")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.width <= 256
    etag = thumb.headers["etag"]
    # RFC 9110 13.1.2: If-None-Match compares weakly, and * matches an image that exists
    for tags in (etag, f"W/{etag}", "*", f'"other", W/{etag}'):
        again = browser.get(f"/thumbs/256/{sha}", headers={"If-None-Match": tags})
        assert again.status_code == 304 and again.headers["etag"] == etag, tags
    for tags in (f'"{sha}"', f'W/"{sha}-w512"'):  # another representation's tag
        assert browser.get(f"/thumbs/256/{sha}", headers={"If-None-Match": tags}).status_code == 200
    full = browser.get(f"/images/{sha}", headers={"If-None-Match": f'W/"{sha}"'})
    assert full.status_code == 304
    assert (studio.settings.data_dir / "thumbs" / "256" / sha[:2] / f"{sha}.webp").is_file()
    assert browser.get(f"/thumbs/300/{sha}").status_code == 404
    assert browser.get("/thumbs/256/not-a-sha").status_code == 422


def test_run_page_shows_images_palette_attempts_decisions_and_receipts(
    studio: Studio, api: Callable[..., Any]
) -> None:
    job = make_run(studio, api)
    browser = studio.signed_in_as("A", "ana", "creator")
    page = browser.get(f"/runs/{job['run_id']}").text
    sha = job["result"]["images"][0]["sha256"]
    assert f"/thumbs/1024/{sha}" in page
    assert "Brand palette" in page and "Dominant colours" in page
    assert 'fill="#0f766e"' in page  # Acme's teal, as a swatch
    assert "Scores vs thresholds" in page and "<meter" in page
    assert "plan" in page and "accept_brief" in page  # the decisions timeline
    assert "Receipt" in page and job["run_id"] in page
    download = browser.get(f"/runs/{job['run_id']}/download")
    assert download.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        names = archive.namelist()
    assert any(n.endswith(".png") for n in names) and f"{job['run_id']}/receipts.json" in names
    reproduced = studio.post_form(
        browser, f"/runs/{job['run_id']}", f"/runs/{job['run_id']}/reproduce", {}
    )
    assert reproduced.status_code == 200 and "byte-identical" in reproduced.text


def test_a_viewer_cannot_reproduce_or_resume(studio: Studio, api: Callable[..., Any]) -> None:
    job = make_run(studio, api)
    browser = studio.signed_in_as("A", "vic", "viewer")
    page = browser.get(f"/runs/{job['run_id']}")
    assert "Reproduce" not in page.text
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    for action in ("reproduce", "resume"):
        response = browser.post(f"/runs/{job['run_id']}/{action}", data={"csrf": token})
        assert response.status_code == 403


def test_an_interrupted_run_resumes_from_the_studio_and_the_api(
    studio: Studio, api: Callable[..., Any]
) -> None:
    job = make_run(studio, api)
    key = studio.key("A", "creator")
    assert api("POST", f"/v1/runs/{job['run_id']}/resume", key).status_code == 409  # finished
    with studio.db.session() as session:
        session.add(
            RunRow(
                id="run_interrupted01",
                tenant="A",
                brand_name="Acme Coffee",
                brief="a cup",
                request={
                    "brief": "a cup",
                    "brand": "Acme Coffee",
                    "size": "128x128",
                    "tenant": "A",
                },
                status="running",
            )
        )
    browser = studio.signed_in_as("A", "ana", "creator")
    page = browser.get("/runs/run_interrupted01")
    assert "Resume" in page.text
    response = studio.post_form(
        browser, "/runs/run_interrupted01", "/runs/run_interrupted01/resume", {}
    )
    assert response.status_code == 303
    again = api("POST", "/v1/runs/run_interrupted01/resume", key)
    assert again.status_code in (202, 409)


def test_another_tenants_run_and_images_are_404_pages(
    studio: Studio, api: Callable[..., Any]
) -> None:
    job = make_run(studio, api)
    sha = job["result"]["images"][0]["sha256"]
    b = studio.signed_in_as("B", "bob", "admin")
    for path in (
        f"/runs/{job['run_id']}",
        f"/runs/{job['run_id']}/download",
        f"/thumbs/256/{sha}",
        f"/images/{sha}",
    ):
        response = b.get(path)
        assert response.status_code == 404, path
        assert "<img" not in response.text and "Not found" in response.text
    assert job["run_id"] not in b.get("/runs").text
    token = re.search(r'name="csrf" value="([^"]+)"', b.get("/runs").text).group(1)  # type: ignore[union-attr]
    assert b.post(f"/runs/{job['run_id']}/resume", data={"csrf": token}).status_code == 404


def test_user_text_is_escaped(studio: Studio, api: Callable[..., Any]) -> None:
    job = make_run(studio, api, brief='a mug <script>alert("x")</script> & "t"')
    browser = studio.signed_in_as("A", "ana", "viewer")
    for path in ("/runs", f"/runs/{job['run_id']}"):
        text = browser.get(path).text
        assert "<script>alert" not in text and "&lt;script&gt;" in text


def test_studio_routes_stay_out_of_the_openapi_schema(studio: Studio) -> None:
    paths = studio.browser().get("/openapi.json").json()["paths"]
    assert all(p.startswith("/v1/") or p in {"/healthz", "/readyz", "/metrics"} for p in paths)


def test_a_malformed_date_filter_is_a_422_page_naming_it_never_every_run(
    studio: Studio, api: Callable[..., Any]
) -> None:
    """The gallery calls the query ``GET /v1/runs`` does, and refuses what it refuses."""
    job = make_run(studio, api)
    browser = studio.signed_in_as("A", "ana", "viewer")
    key = studio.key("A", "viewer")
    for query, field in (
        ("since=yesterday", "From (since)"),
        ("since=2026-13-45", "From (since)"),
        ("until=garbage", "To (until)"),
    ):
        page = browser.get(f"/runs?{query}")
        assert page.status_code == 422, (query, page.status_code)
        assert field in page.text and "is not a day (YYYY-MM-DD)" in page.text, page.text
        assert job["run_id"] not in page.text, query
        assert api("GET", f"/v1/runs?{query}", key).status_code == 422, query
    # a valid day still filters, an empty one is no filter
    assert job["run_id"] in browser.get("/runs?since=2000-01-01&until=").text


def test_a_status_or_brand_the_api_refuses_is_a_page_naming_it_never_zero_runs(
    studio: Studio, api: Callable[..., Any]
) -> None:
    """A status that is not one is a 422 page, a brand the tenant lacks a 404, as at /v1/runs."""
    job = make_run(studio, api)
    browser = studio.signed_in_as("A", "ana", "viewer")
    key = studio.key("A", "viewer")
    for query, code, words in (
        ("status=bogus", 422, "&#39;bogus&#39; is not a run status"),
        ("brand=Nope", 404, "unknown brand &#39;Nope&#39;"),
    ):
        page = browser.get(f"/runs?{query}")
        assert page.status_code == code, (query, page.status_code)
        assert words in page.text and "0 runs" not in page.text, page.text
        assert api("GET", f"/v1/runs?{query}", key).status_code == code, query
    # a real status and any spelling of a brand still filter
    assert job["run_id"] in browser.get(f"/runs?status={job['state']}&brand=acme_coffee").text
