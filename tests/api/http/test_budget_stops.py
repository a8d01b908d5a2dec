"""A budget that stops a run is reported as one, however the run met it (docs/http-api.md,
Jobs): the job fails with ``budget-exhausted`` (402) and the run's ``stop_cause`` is
``budget``, also when the stop is a refused reservation in the generate node (a tenant budget
that fitted the round's plan but, once a call was billed, not the next call) - not a
``failed`` 422 with no cause. Through the HTTP API, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from brandloop.api.cli import main
from brandloop.providers import GeneratedImage, ImageRequest, ImageResult
from brandloop.registry import spend
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, brand_kit, wait_job
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]

CATALOG_PRICE = 0.01  # procedural/draft, per image (policies/catalog.yaml): what a call reserves
BILLED = 0.015  # what this backend bills per image: more than the catalog says


def _magenta(width: int, height: int) -> bytes:
    """An image in Acme Coffee's forbidden colour: never accepted."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (255, 0, 255)).save(buffer, format="PNG")
    return buffer.getvalue()


class OverbillingProvider:
    """An image backend whose price rose past the catalog's: each call bills more than the run
    reserved for it. It answers at once (no wait), so of a round's calls the next one reserves
    after this one is settled at its bill, and finds the tenant budget short."""

    name = "procedural"

    def __init__(self) -> None:
        self.calls: list[ImageRequest] = []

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.calls.append(request)
        image = GeneratedImage(
            data=_magenta(request.width, request.height),
            width=request.width,
            height=request.height,
            seed=request.seed,
        )
        return ImageResult(
            images=[image] * request.count,
            seed=request.seed,
            provider_request_id=f"req-{len(self.calls)}",
            cost_usd=BILLED * request.count,
        )


@pytest.fixture
def tenant_a(
    monkeypatch: pytest.MonkeyPatch, settings_on_both: Settings, db_on_both: Database
) -> Iterator[Settings]:
    """The CLI acts for tenant A (``BRANDLOOP_TENANT``), on the database under test."""
    monkeypatch.setenv("BRANDLOOP_TENANT", "A")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_a_refused_reservation_fails_the_job_as_budget_exhausted(
    tenant_a: Settings, db_on_both: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, db = tenant_a, db_on_both
    # the tenant may spend $0.02: two draft images at the catalog's price, as the round plans
    # (`brandloop campaign budget --tenant`, docs/agent.md)
    with pytest.raises(SystemExit) as exited:
        main(["campaign", "budget", "0.02", "--tenant"])
    assert not exited.value.code, capsys.readouterr().err
    keys = Keys(db)
    provider = OverbillingProvider()
    body = {
        "brief": "a steaming cup of coffee, warm morning light",
        "brand": "Acme Coffee",
        "count": 2,
        "size": "64x64",
        "model": "procedural/draft",
        "seed": 7,
        "budget_usd": 1.0,  # the request's own budget is not what stops it
    }
    with client_with(settings, db, provider, workers=1) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator = keys["A", "creator"]
        answer = client.post("/v1/generations", json=body, headers=creator)
        assert answer.status_code == 202, answer.text
        job = wait_job(client, answer.json()["id"], creator)
        trace = client.get(f"/v1/runs/{job['run_id']}/trace", headers=creator).json()

    # the round planned two calls; the first was billed $0.015, so the second was refused
    assert len(provider.calls) == 1, "the second call was made past the tenant budget"
    decisions = [(d["node"], d["action"]) for d in job["result"]["decisions"]]
    assert ("generate", "stop_budget") in decisions, decisions
    assert "remaining tenant A budget $0.005 cannot pay" in job["result"]["reason"]
    # ... and that is a budget stop, reported as one
    assert job["state"] == "failed"
    assert job["result"]["status"] == "failed"
    assert job["result"]["stop_cause"] == "budget", job["result"]
    assert job["error"]["type"] == "budget-exhausted", job["error"]
    assert job["error"]["status"] == 402
    assert job["error"]["detail"] == job["result"]["reason"]
    assert job["cost_usd"] == pytest.approx(BILLED)
    assert [a["cost_usd"] for a in trace["attempts"]] == [pytest.approx(BILLED)]
    stopped = [
        e["payload"]
        for e in trace["events"]
        if e["kind"] == "decision" and e["payload"]["action"] == "stop_budget"
    ]
    assert [s["node"] for s in stopped] == ["generate"]
    with db.session() as session:
        assert spend.committed(session, tenant="A") == pytest.approx(BILLED)
    assert BILLED > CATALOG_PRICE and BILLED + CATALOG_PRICE > 0.02
