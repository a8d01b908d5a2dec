"""Retries, refusals and fallback end to end against a fake OpenAI-compatible server on
127.0.0.1 that injects 429 with Retry-After, 500, 503, timeouts, malformed JSON, undecodable
images and policy refusals; and the real CLI generating through it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from brandloop.agent.budgets import set_budget
from brandloop.agent.runner import run_generation
from brandloop.domain import GenerationRequest
from brandloop.policies.agent import AgentPolicy
from brandloop.policies.brandkit import load_brand_kit
from brandloop.policies.catalog import load_catalog
from brandloop.providers import ImageRequest
from brandloop.registry import crud, spend
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from brandloop.tools.providers.errors import (
    MalformedResponseError,
    RefusedByProviderError,
    TerminalProviderError,
    UnknownOutcomeError,
)
from brandloop.tools.providers.factory import build_providers, close_providers
from brandloop.tools.providers.openai import OpenAIImagesProvider
from brandloop.tools.providers.resilience import ProviderLimits, ResilientProvider
from tests.fakes.provider_server import FakeImagesApp, serve

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[3]
KEY = "sk-test-e2e-0123456789"
BRIEF = (ROOT / "examples" / "briefs" / "morning-ritual.txt").read_text().strip()
REQUEST = ImageRequest(
    model="gpt-image-1", prompt="a teal cup", width=1024, height=1024, idempotency_key="bl-e2e-1"
)


@pytest.fixture
def app() -> FakeImagesApp:
    return FakeImagesApp(api_key=KEY, latency_s=0.01, timeout_s=2.0, image_side=64)


@pytest.fixture
def base_url(app: FakeImagesApp) -> Iterator[str]:
    with serve(app) as url:
        yield url


async def resilient(base_url: str, *, read_timeout: float = 5.0, **limits) -> ResilientProvider:
    client = httpx.AsyncClient(timeout=httpx.Timeout(read_timeout, connect=2.0))
    adapter = OpenAIImagesProvider(client, api_key=KEY, base_url=base_url, models=load_catalog())
    defaults = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05}
    return ResilientProvider(adapter, ProviderLimits(**(defaults | limits)), on_close=client.aclose)


async def test_429_500_503_then_success_pays_once(app: FakeImagesApp, base_url: str) -> None:
    app.faults.extend(["429", "500", "503"])
    provider = await resilient(base_url)
    try:
        started = time.perf_counter()
        result = await provider.generate(REQUEST)
    finally:
        await provider.aclose()
    assert result.tries == 4 and len(result.images) == 1
    assert time.perf_counter() - started >= 0.05  # the 429's retry-after-ms: 50 was honoured
    assert dict(app.ledger) == {"bl-e2e-1": 1}
    assert {r["headers"]["idempotency-key"] for r in app.requests} == {"bl-e2e-1"}
    assert result.revised_prompt and result.cost_usd > 0


async def test_retry_after_seconds_is_honoured(app: FakeImagesApp, base_url: str) -> None:
    app.faults.append("429s")
    provider = await resilient(base_url)
    try:
        started = time.perf_counter()
        result = await provider.generate(REQUEST)
    finally:
        await provider.aclose()
    assert result.tries == 2 and time.perf_counter() - started >= 1.0


async def test_a_read_timeout_is_an_unknown_outcome_and_never_sent_again(
    app: FakeImagesApp, base_url: str
) -> None:
    """OpenAI ignores Idempotency-Key on images: a retry after a read timeout would be billed
    again. The server here sleeps past the client's timeout, then bills anyway."""
    app.faults.append("timeout")
    provider = await resilient(base_url, read_timeout=0.3)
    try:
        with pytest.raises(UnknownOutcomeError) as exc:
            await provider.generate(REQUEST)
    finally:
        await provider.aclose()
    assert exc.value.billing == "unknown" and exc.value.tries == 1
    assert len(app.requests) == 1  # not sent a second time
    deadline = time.monotonic() + 5
    while not app.ledger and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dict(app.ledger) == {"bl-e2e-1": 1}  # the lost answer was billed all the same


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("malformed", MalformedResponseError),
        ("bad_image", MalformedResponseError),
        ("refuse", RefusedByProviderError),
        ("401", TerminalProviderError),
    ],
)
async def test_garbage_refusals_and_bad_keys_are_not_retried(
    app: FakeImagesApp, base_url: str, fault: str, error: type[Exception]
) -> None:
    app.faults.append(fault)
    provider = await resilient(base_url)
    try:
        with pytest.raises(error) as exc:
            await provider.generate(REQUEST)
    finally:
        await provider.aclose()
    assert len(app.requests) == 1
    assert KEY not in str(exc.value)


@pytest.fixture
def openai_settings(
    settings: Settings,
    db: Database,
    base_url: str,
    monkeypatch: pytest.MonkeyPatch,
    acme_kit_path: Path,
) -> Settings:
    monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("BRANDLOOP_OPENAI_BASE_URL", base_url)
    monkeypatch.setenv("BRANDLOOP_PROVIDER_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("BRANDLOOP_PROVIDER_BACKOFF_INITIAL_S", "0.01")
    monkeypatch.setenv("BRANDLOOP_PROVIDER_BACKOFF_MAX_S", "0.02")
    get_settings.cache_clear()
    configured = get_settings()
    with db.session() as session:
        crud.upsert_brand(session, tenant="default", kit=load_brand_kit(acme_kit_path))
    return configured


def ladder(*ids: str) -> list:
    return [m for m in load_catalog() if m.id in ids]


async def test_a_dead_backend_falls_back_to_the_next_tier(
    app: FakeImagesApp, openai_settings: Settings, db: Database
) -> None:
    app.faults.extend(["503"] * 50)
    request = GenerationRequest(brief=BRIEF, brand="Acme Coffee", count=1, size="256x256", seed=3)
    result = await run_generation(
        request,
        settings=openai_settings,
        db=db,
        use_memory=False,
        models=ladder("openai/gpt-image-1-mini", "procedural/studio"),
    )
    assert result.status in {"succeeded", "partial"}, result.reason
    assert "fallback_model" in [d.action for d in result.decisions]
    assert result.images[0].model == "procedural/studio"
    assert not app.ledger  # nothing was paid at the dead backend
    with db.session() as session:
        attempts = crud.list_attempts(session, run_id=result.run_id)
        failed = [a for a in attempts if a.model == "openai/gpt-image-1-mini"]
        assert failed and all(a.outcome == "error" for a in failed)
        assert "after 2 tries" in (failed[0].error or "")
        assert all(a.tries == 2 for a in failed)
        assert all(a.idempotency_key.startswith("bl-") for a in attempts)
        events = crud.list_events(session, run_id=result.run_id)
        calls = [e.payload for e in events if e.kind == "provider_call"]
        assert calls and calls[0]["tries"] == 2
        assert KEY not in json.dumps([e.payload for e in events])


async def test_a_retried_attempt_records_its_tries_and_the_revised_prompt(
    app: FakeImagesApp, openai_settings: Settings, db: Database
) -> None:
    app.faults.extend(["429"])
    request = GenerationRequest(brief=BRIEF, brand="Acme Coffee", count=1, size="256x256", seed=3)
    result = await run_generation(
        request,
        settings=openai_settings,
        db=db,
        use_memory=False,
        models=ladder("openai/gpt-image-1"),
        policy=AgentPolicy(accept_composite=0.0, require_all_signals=False),  # any image will do
    )
    assert result.images, result.reason
    with db.session() as session:
        first = crud.list_attempts(session, run_id=result.run_id)[0]
        assert first.tries == 2 and (first.revised_prompt or "").startswith("revised: ")
        artifact = crud.get_artifact(session, tenant="default", sha256=result.images[0].sha256)
        assert artifact is not None and artifact.receipt is not None
        assert artifact.receipt["revised_prompt"].startswith("revised: ")
        assert artifact.receipt["tries"] >= 1


async def test_a_refusal_is_recorded_and_the_run_ends_with_a_reason(
    app: FakeImagesApp, openai_settings: Settings, db: Database
) -> None:
    request = GenerationRequest(
        brief="a coffee cup, REFUSE-ME", brand="Acme Coffee", count=1, seed=3, budget_usd=0.2
    )
    result = await run_generation(
        request,
        settings=openai_settings,
        db=db,
        use_memory=False,
        models=ladder("openai/gpt-image-1"),
    )
    assert result.status in {"failed", "refused"} and result.reason
    assert "safety_rewrite" in [d.action for d in result.decisions]
    with db.session() as session:
        attempts = crud.list_attempts(session, run_id=result.run_id)
        assert attempts and all(a.outcome == "refused" for a in attempts)
    assert len(app.requests) == len(attempts)  # a refusal is never retried as it was


async def test_a_call_billed_after_the_client_gave_up_counts_and_the_budget_holds(
    app: FakeImagesApp, openai_settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server sleeps past the client's read timeout, then bills. The run records the call
    as billing: unknown at its full reservation and never sends it again; the tenant budget
    counts it, so the run cannot afford the fallback it would otherwise have paid for."""
    monkeypatch.setenv("BRANDLOOP_PROVIDER_TIMEOUT_S", "0.3")
    get_settings.cache_clear()
    settings = get_settings()
    app.timeout_s = 1.0
    app.faults.append("timeout")
    with db.session() as session:
        set_budget(session, tenant="default", scope="tenant", scope_id="default", limit_usd=0.02)
    request = GenerationRequest(
        brief=BRIEF, brand="Acme Coffee", count=1, size="1024x1024", seed=3, budget_usd=1.0
    )
    result = await run_generation(
        request,
        settings=settings,
        db=db,
        use_memory=False,
        models=ladder("openai/gpt-image-1-mini", "procedural/draft"),
        # the vendor's default setting only, so the reservation is the medium price below
        policy=AgentPolicy(accept_composite=0.0, require_all_signals=False, explore_quality=False),
    )
    time.sleep(1.2)  # the server finishes the timed-out call and bills it
    (sent,) = app.requests  # never sent again
    first = sent["headers"]["idempotency-key"]
    assert dict(app.ledger) == {first: 1}, "the fake billed the call whose answer was lost"
    price = 0.011  # gpt-image-1-mini, 1024x1024, medium: the call's reservation
    with db.session() as session:
        attempts = crud.list_attempts(session, run_id=result.run_id)
        (lost,) = attempts  # $0.02 - $0.011 left cannot pay the $0.01 fallback
        assert lost.idempotency_key == first
        assert lost.billing == "unknown" and lost.cost_usd == pytest.approx(price)
        assert spend.committed(session, tenant="default") == pytest.approx(price)
        assert [r.call_key for r in spend.unknown_calls(session, tenant="default")] == [first]
    assert result.cost_usd == pytest.approx(price) and "budget" in result.reason


async def test_factory_builds_resilient_providers_from_settings(openai_settings: Settings) -> None:
    providers = build_providers(openai_settings, load_catalog())
    try:
        assert set(providers) == {"procedural", "openai"}
        result = await providers["openai"].generate(REQUEST)
        assert result.images and result.tries == 1
    finally:
        await close_providers(providers)


@pytest.mark.slow
def test_cli_generates_with_openai_against_any_compatible_server(tmp_path: Path) -> None:
    """`brandloop generate --model openai/gpt-image-1` through the real CLI, in a subprocess,
    against the fake server named by BRANDLOOP_OPENAI_BASE_URL."""
    app = FakeImagesApp(api_key=KEY, latency_s=0.01, render=True)
    data_dir, out_dir = tmp_path / "data", tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANDLOOP_")}
    with serve(app) as base_url:
        env |= {
            "BRANDLOOP_DATA_DIR": str(data_dir),
            "BRANDLOOP_OPENAI_BASE_URL": base_url,
            "BRANDLOOP_OPENAI_API_KEY": KEY,
        }
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "from brandloop.api.cli import main; main()",
                "generate",
                BRIEF,
                "--brand",
                str(ROOT / "examples" / "brands" / "acme-coffee.yaml"),
                "--model",
                "openai/gpt-image-1",
                "--size",
                "512x512",
                "--budget",
                "1",
                "--no-memory",
                "--json",
                "--out",
                str(out_dir),
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "succeeded" and doc["images"]
    image = doc["images"][0]
    assert image["model"] == "openai/gpt-image-1"
    from PIL import Image

    with Image.open(image["path"]) as picture:
        assert picture.size == (512, 512)  # made at 1024x1024, post-processed to what was asked
    bodies = [r["body"] for r in app.requests]
    assert bodies and all(b["model"] == "gpt-image-1" and b["size"] == "1024x1024" for b in bodies)
    assert app.ledger and all(count == 1 for count in app.ledger.values())
    assert doc["cost_usd"] > 0
    for path in [*data_dir.rglob("*"), *out_dir.rglob("*")]:
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in proc.stdout + proc.stderr
