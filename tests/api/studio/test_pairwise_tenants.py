"""A pairwise judgement credits the judging tenant's own template versions. The procedural
renderer makes byte-identical images for another tenant's run of the same colours, seed,
size and model, and the attempt behind a judged image was found by its sha256 alone: tenant
A's tally once read "rival-secret-hero@1 1 0 0 100%", tenant B's private template."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from brandloop.registry.models import AttemptRow, RunRow
from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of

BODY = "{{ brief }}, in the house style, {{ palette_clause }}"


def _template(studio: Studio, api: Callable[..., Any], tenant: str, name: str) -> None:
    """``name@1``, written by one principal of ``tenant`` and approved by another."""
    creator, approver = studio.key(tenant, "creator"), studio.key(tenant, "approver")
    made = api("POST", f"/v1/templates/{name}/versions", creator, json={"body": BODY})
    assert made.status_code == 201, made.text
    assert api("POST", f"/v1/templates/{name}/versions/1/submit", creator).status_code == 200
    review = f"/v1/templates/{name}/versions/1/review"
    approved = api("POST", review, approver, json={"decision": "approve"})
    assert approved.json()["status"] == "approved", approved.text


def _run(studio: Studio, api: Callable[..., Any], tenant: str, template: str, seed: int) -> str:
    job = api(
        "POST",
        "/v1/generations?wait=60",
        studio.key(tenant, "creator"),
        json={"brief": "a cup", "brand": "Acme Coffee", "size": "128x128", "seed": seed,
              "model": "procedural/draft", "template": template},
    ).json()  # fmt: skip
    assert job["state"] in ("succeeded", "failed"), job  # scored attempts either way
    return str(job["run_id"])


def _shas(studio: Studio, run_id: str) -> set[str]:
    with studio.db.session() as session:
        return set(
            session.scalars(
                select(AttemptRow.artifact_sha256).where(
                    AttemptRow.run_id == run_id, AttemptRow.artifact_sha256.is_not(None)
                )
            )
        )


def test_a_pairwise_tally_never_credits_another_tenants_template(
    studio: Studio, api: Callable[..., Any]
) -> None:
    for tenant in ("B", "A"):
        api("POST", "/v1/brands", studio.key(tenant, "admin"), json=brand_kit())
    _template(studio, api, "B", "rival-secret-hero")
    _template(studio, api, "A", "house-hero")
    rival = _run(studio, api, "B", "rival-secret-hero@1", seed=5)  # first: found first by sha
    house = _run(studio, api, "A", "house-hero@1", seed=5)
    _run(studio, api, "A", "brand-hero@1", seed=6)
    shared = _shas(studio, rival) & _shas(studio, house)
    assert shared, "the two tenants' runs made the same bytes"
    with studio.db.session() as session:
        assert session.scalar(select(RunRow.tenant).where(RunRow.id == rival)) == "B"

    lee = studio.signed_in_as("A", "lee", "approver")
    judged = 0
    page = lee.get("/review/pairwise?axis=template").text
    while 'name="left"' in page and judged < 20:  # every pair, so the shared bytes are judged
        left = re.search(r'name="left" value="(\w+)"', page).group(1)  # type: ignore[union-attr]
        right = re.search(r'name="right" value="(\w+)"', page).group(1)  # type: ignore[union-attr]
        answer = lee.post(
            "/review/pairwise",
            data={"csrf": csrf_of(page), "axis": "template", "left": left, "right": right,
                  "winner": "left" if left in shared else "right"},
            follow_redirects=False,
        )  # fmt: skip
        assert answer.status_code == 303, answer.text
        judged += 1
        page = lee.get("/review/pairwise?axis=template").text
    assert judged, page
    refs = set(re.findall(r"<tr><td>([\w@.-]+)</td><td>\d+</td>", page))
    assert refs == {"house-hero@1", "brand-hero@1"}, refs
    assert "rival-secret-hero" not in page
