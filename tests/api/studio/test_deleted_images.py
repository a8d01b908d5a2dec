"""The studio shows an image whose bytes were deleted (``DELETE /v1/artifacts/{sha256}``) as
deleted, with when, in words: no ``<img>`` of it and no link to a URL that answers 404 - on the
run page, the gallery, a chat turn, a campaign board, the review queue and a review item - and
the run's download holds only its receipt, on both databases."""

from __future__ import annotations

import io
import json
import os
import re
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of
from tests.api.test_cli import run_cli

GEN = {"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256", "seed": 4}
PLACEHOLDER = re.compile(
    r'<span class="deleted-image[^"]*"><strong>Image deleted</strong> '
    r'<time datetime="(?P<iso>[^"]+)">(?P<shown>[^<]+) UTC</time><span class="sha">(?P<sha>\w+)'
)


def _gone_from(page: str, sha: str) -> None:
    """``page`` shows ``sha`` as deleted with when, and neither loads nor links its bytes."""
    assert f"/thumbs/256/{sha}" not in page and f"/thumbs/512/{sha}" not in page
    assert f"/thumbs/1024/{sha}" not in page and f"/images/{sha}" not in page
    assert f"/v1/artifacts/{sha}" not in page
    shown = [m for m in PLACEHOLDER.finditer(page) if m["sha"] == sha[:12]]
    assert shown, page
    assert all(m["iso"][:16].replace("T", " ") == m["shown"] for m in shown), shown


def _delete(studio: Studio, api: Callable[..., Any], sha: str, tenant: str = "A") -> None:
    response = api("DELETE", f"/v1/artifacts/{sha}", studio.key(tenant, "admin"))
    assert response.status_code == 204, response.text


def _generate(studio: Studio, api: Callable[..., Any], tenant: str) -> dict[str, Any]:
    api("POST", "/v1/brands", studio.key(tenant, "admin"), json=brand_kit())
    job: dict[str, Any] = api(
        "POST", "/v1/generations?wait=120", studio.key(tenant, "creator"), json=GEN
    ).json()
    assert job["state"] in ("succeeded", "awaiting_review"), job
    return job


def test_the_run_page_the_gallery_and_the_download_show_a_deleted_image_as_deleted(
    studio: Studio, api: Callable[..., Any]
) -> None:
    job = _generate(studio, api, "A")
    sha = job["result"]["images"][0]["sha256"]
    _delete(studio, api, sha)
    attempt_shas = {
        a["artifact_sha256"]
        for a in api("GET", f"/v1/runs/{job['run_id']}/trace", studio.key("A", "viewer")).json()[
            "attempts"
        ]
    } - {None}

    ana = studio.signed_in_as("A", "ana", "viewer")
    run_page = ana.get(f"/runs/{job['run_id']}").text
    _gone_from(run_page, sha)
    assert "Its bytes were deleted; its receipt stays below." in run_page
    assert "Receipt" in run_page  # provenance stays
    source = next(
        r["source_sha256"]
        for r in api("GET", f"/v1/runs/{job['run_id']}/receipts", studio.key("A", "viewer")).json()
        if r["sha256"] == sha
    )
    assert source in attempt_shas
    assert f"/thumbs/256/{source}" not in run_page  # its raw source went with it: a takedown
    assert all(f"/thumbs/256/{s}" in run_page for s in attempt_shas - {source})  # still held
    _gone_from(ana.get("/runs").text, sha)

    download = ana.get(f"/runs/{job['run_id']}/download")
    names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    assert names == [f"{job['run_id']}/receipts.json"], names


def test_a_chat_turn_and_a_campaign_board_show_a_deleted_image_as_deleted(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    cara = studio.signed_in_as("A", "cara", "creator")
    home = cara.get("/chat")
    thread = cara.post(
        "/chat",
        data={"csrf": csrf_of(home.text), "brand": "Acme Coffee", "message": "a steaming cup",
              "size": "256x256"},
        follow_redirects=False,
    ).headers["location"].split("#")[0]  # fmt: skip
    for _ in range(1200):
        turn = cara.get(thread).text
        if "/thumbs/1024/" in turn:
            break
        time.sleep(0.1)
    sha = re.search(r"/thumbs/1024/([0-9a-f]{64})", turn).group(1)  # type: ignore[union-attr]
    _delete(studio, api, sha)
    _gone_from(cara.get(thread).text, sha)

    creator = studio.key("A", "creator")
    body = {"name": "autumn", "brand": "Acme Coffee", "budget_usd": 0.2,
            "assets": [{"brief": "a steaming cup", "formats": ["128x128"], "count": 1}]}  # fmt: skip
    campaign = api("POST", "/v1/campaigns", creator, json=body).json()
    job_id = campaign["assets"][0]["job"]["id"]
    for _ in range(1200):
        job = api("GET", f"/v1/jobs/{job_id}", creator).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.1)
    assert job["state"] == "succeeded", job
    asset = job["result"]["images"][0]["sha256"]
    _delete(studio, api, asset)
    _gone_from(cara.get(f"/campaigns/{campaign['id']}").text, asset)


@pytest.fixture
def always_review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))


def test_the_review_pages_show_an_image_deleted_while_its_run_waits(
    studio: Studio, api: Callable[..., Any], always_review: None
) -> None:
    job = _generate(studio, api, "A")
    assert job["state"] == "awaiting_review"
    trace = api("GET", f"/v1/runs/{job['run_id']}/trace", studio.key("A", "viewer")).json()
    held = [a["artifact_sha256"] for a in trace["attempts"] if a["outcome"] == "accepted"]
    assert len(held) == 1
    _delete(studio, api, held[0])

    lee: TestClient = studio.signed_in_as("A", "lee", "approver")
    _gone_from(lee.get("/review").text, held[0])
    item = lee.get(f"/review/{job['run_id']}").text
    _gone_from(item, held[0])
    assert "Deleted before the verdict: the run can only be rejected." in item
    _gone_from(lee.get(f"/runs/{job['run_id']}").text, held[0])


def test_pairwise_mode_never_offers_a_deleted_image(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    creator = studio.key("A", "creator")
    made = {}
    for model in ("procedural/draft", "procedural/studio"):
        job = api(
            "POST",
            "/v1/generations?wait=60",
            creator,
            json={"brief": "a cup", "brand": "Acme Coffee", "size": "128x128", "model": model},
        ).json()
        trace = api("GET", f"/v1/runs/{job['run_id']}/trace", creator).json()
        made[model] = {a["artifact_sha256"] for a in trace["attempts"]} - {None}
    assert made["procedural/draft"] and made["procedural/studio"]
    for sha in made["procedural/draft"]:
        _delete(studio, api, sha)
    page = studio.signed_in_as("A", "lee", "approver").get("/review/pairwise?axis=model").text
    for sha in made["procedural/draft"]:
        assert sha not in page
    assert 'name="left"' not in page  # no pair left: one model's images are all gone


def test_a_deleted_images_thumbnails_go_with_its_last_copy(
    studio: Studio, api: Callable[..., Any], always_review: None
) -> None:
    """The thumbnails made of an image are removed with its file: not while another tenant
    keeps the same bytes (it still sees them), but once the last copy is deleted."""
    held = {}
    for tenant in ("A", "B"):  # the preview renderer makes the same bytes for both
        job = _generate(studio, api, tenant)
        trace = api("GET", f"/v1/runs/{job['run_id']}/trace", studio.key(tenant, "viewer"))
        held[tenant] = [
            a["artifact_sha256"] for a in trace.json()["attempts"] if a["outcome"] == "accepted"
        ]
    assert held["A"] == held["B"] and len(held["A"]) == 1, held
    sha = held["A"][0]
    ana, bo = (studio.signed_in_as(t, "ana", "viewer") for t in ("A", "B"))
    for width in (256, 1024):
        assert ana.get(f"/thumbs/{width}/{sha}").status_code == 200
    thumbs = studio.settings.data_dir / "thumbs"
    made = sorted(thumbs.glob(f"*/{sha[:2]}/{sha}.webp"))
    assert [p.parent.parent.name for p in made] == ["1024", "256"], made

    _delete(studio, api, sha, tenant="A")  # B keeps its copy: its thumbnails stay
    assert all(p.is_file() for p in made)
    assert ana.get(f"/thumbs/256/{sha}").status_code == 404
    assert bo.get(f"/thumbs/256/{sha}").status_code == 200

    _delete(studio, api, sha, tenant="B")  # the last copy: the file and its thumbnails go
    assert list(thumbs.glob(f"*/{sha[:2]}/{sha}.*")) == []
    assert not list(studio.settings.artifacts_dir.glob(f"*/*/{sha}.*"))
    assert bo.get(f"/thumbs/256/{sha}").status_code == 404


def test_thumbnails_an_image_left_on_another_replica_go_with_gc(
    studio: Studio, api: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Each replica caches thumbnails in its own data dir, so one whose image is deleted
    through another replica stays behind: ``brandloop gc`` removes the thumbnails whose image
    file is gone (and temp files of a thumbnail write cut short, once old), keeping every
    thumbnail of an image still stored and a temp file being written now."""
    shas = [
        _generate(studio, api, "A")["result"]["images"][0]["sha256"],
        api(
            "POST", "/v1/generations?wait=120", studio.key("A", "creator"), json={**GEN, "seed": 5}
        ).json()["result"]["images"][0]["sha256"],
    ]
    gone, kept = shas
    assert gone != kept
    ana = studio.signed_in_as("A", "ana", "viewer")
    for sha in shas:
        for width in (256, 1024):
            assert ana.get(f"/thumbs/{width}/{sha}").status_code == 200
    thumbs = studio.settings.data_dir / "thumbs"
    left = sorted(thumbs.glob(f"*/{gone[:2]}/{gone}.webp"))
    assert len(left) == 2, left
    old_tmp, new_tmp = (left[0].parent / f".tmp-{n}.webp" for n in ("old", "new"))
    for tmp in (old_tmp, new_tmp):
        tmp.write_bytes(b"half a thumbnail")
    then = time.time() - 2 * 3600  # past BRANDLOOP_STRAY_GRACE_SECONDS (an hour)
    os.utime(old_tmp, (then, then))

    elsewhere = thumbs.with_name("thumbs-of-this-replica")
    thumbs.rename(elsewhere)  # the replica that deletes it has its own data dir: none of these
    try:
        _delete(studio, api, gone)
    finally:
        elsewhere.rename(thumbs)
    assert all(p.is_file() for p in left)  # the deleting replica could not see them
    assert ana.get(f"/thumbs/256/{gone}").status_code == 404

    orphans = {*left, old_tmp}
    size = sum(p.stat().st_size for p in orphans)
    dry = _gc(capsys, "--dry-run")
    assert (dry["orphan_thumbnails"], dry["orphan_thumbnail_bytes"]) == (3, size), dry
    assert all(p.exists() for p in orphans)
    done = _gc(capsys)
    assert (done["orphan_thumbnails"], done["orphan_thumbnail_bytes"]) == (3, size), done
    assert not any(p.exists() for p in orphans)
    assert new_tmp.is_file()  # being written now, as far as gc can tell
    assert len(list(thumbs.glob(f"*/{kept[:2]}/{kept}.webp"))) == 2
    assert ana.get(f"/thumbs/256/{kept}").status_code == 200
    assert _gc(capsys)["orphan_thumbnails"] == 0


def _gc(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = run_cli(capsys, "gc", *argv, "--json")
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    return report
