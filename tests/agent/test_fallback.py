"""Fallback across providers, open breakers, the provider allow-list, exit code 5, and the
preview renderer that is never a silent substitute."""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path

import httpx
import pytest

from brandloop.agent.runner import (
    brand_run_policy,
    catalog_models,
    model_ladder,
    run_generation,
)
from brandloop.api.cli import main
from brandloop.domain import GenerationRequest, ModelSpec
from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from brandloop.tools.providers.errors import RetryableProviderError, UnknownOutcomeError
from brandloop.tools.providers.openai import OpenAIImagesProvider
from brandloop.tools.providers.resilience import ProviderLimits, ResilientProvider
from tests.agent.helpers import ROOT, add_acme, allow
from tests.backends import steady_procedural
from tests.fakes.provider_server import FakeImagesApp, serve

KEY = "sk-test-fallback-0001"
FAST = ProviderLimits(
    max_attempts=2, backoff_initial_s=0.001, backoff_max_s=0.001, breaker_failures=2
)


class Backup:
    """A second provider (the procedural renderer under another name) that keeps a ledger."""

    name = "backup"

    def __init__(self) -> None:
        self.inner = steady_procedural()
        self.calls: list[ImageRequest] = []

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.calls.append(request)
        return await self.inner.generate(request.model_copy(update={"model": "studio"}))


def _down_openai(calls: list[str]) -> ResilientProvider:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content)["model"])
        return httpx.Response(503, json={"error": {"message": "overloaded", "type": "server"}})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ResilientProvider(
        OpenAIImagesProvider(client, api_key=KEY, base_url="http://openai.test/v1", models=SPECS),
        FAST,
    )


SPECS = [
    ModelSpec(
        id="openai/img-a", provider="openai", model="img-a", tier="draft",
        price_per_image_usd=0.01, quality_baseline=0.9, supports_seed=False,
    ),
    ModelSpec(
        id="openai/img-b", provider="openai", model="img-b", tier="premium",
        price_per_image_usd=0.05, quality_baseline=0.9, supports_seed=False,
    ),
    ModelSpec(
        id="backup/studio", provider="backup", model="studio", tier="standard",
        price_per_image_usd=0.03, quality_baseline=0.6,
    ),
]  # fmt: skip


def _request(brand: str) -> GenerationRequest:
    return GenerationRequest(
        brief="a teal coffee cup on a cream table", brand=brand, size="256x256", seed=3,
        budget_usd=0.5,
    )  # fmt: skip


async def test_an_open_breaker_sends_the_next_round_to_another_provider(
    settings: Settings, db: Database
):
    brand = add_acme(settings, db)
    openai_calls: list[str] = []
    backup = Backup()
    result = await run_generation(
        _request(brand),
        settings=settings,
        db=db,
        providers={"openai": _down_openai(openai_calls), "backup": backup},
        models=SPECS,
        use_memory=False,
        image_moderator=allow,
    )
    # round 1: the cheapest, best-rated model, two tries (503 twice), which opens the breaker;
    # then not another call to openai - neither img-a (excluded) nor img-b (breaker open)
    assert openai_calls == ["img-a", "img-a"]
    assert backup.calls, "the backup provider took over"
    actions = [d.action for d in result.decisions]
    assert "fallback_model" in actions
    replans = [d.reason for d in result.decisions if d.action == "replan"]
    assert replans and "skipping unavailable provider(s): openai" in replans[0]
    assert result.status in ("succeeded", "failed")
    assert all(image.model == "backup/studio" for image in result.images)


async def test_no_usable_provider_fails_naming_each_provider_and_its_error(
    settings: Settings, db: Database
):
    brand = add_acme(settings, db)
    openai_calls: list[str] = []
    result = await run_generation(
        _request(brand),
        settings=settings,
        db=db,
        providers={"openai": _down_openai(openai_calls)},
        models=SPECS[:2],
        use_memory=False,
        image_moderator=allow,
    )
    assert result.status == "failed" and result.stop_cause == "providers_unavailable"
    assert result.reason == "no usable provider: openai: 503 ×2, breaker open", result.reason
    assert result.decisions[-1].action == "stop_providers_unavailable"
    assert openai_calls == ["img-a", "img-a"], "never a call to a known-down provider"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


@pytest.fixture
def down_server(monkeypatch: pytest.MonkeyPatch):
    app = FakeImagesApp(api_key=KEY)
    app.faults.extend(["503"] * 40)
    with serve(app) as base_url:
        monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", KEY)
        monkeypatch.setenv("BRANDLOOP_OPENAI_BASE_URL", base_url)
        monkeypatch.setenv("BRANDLOOP_PROVIDER_MAX_ATTEMPTS", "2")
        monkeypatch.setenv("BRANDLOOP_PROVIDER_BACKOFF_INITIAL_S", "0.001")
        monkeypatch.setenv("BRANDLOOP_PROVIDER_BACKOFF_MAX_S", "0.001")
        monkeypatch.setenv("BRANDLOOP_PROVIDER_BREAKER_FAILURES", "2")
        get_settings.cache_clear()
        yield app
    get_settings.cache_clear()


def test_exit_code_5_when_the_only_provider_is_down(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database, down_server: FakeImagesApp,
    tmp_path: Path,
) -> None:  # fmt: skip
    code, out, err = run_cli(
        capsys, "generate", "a teal coffee cup", "--brand",
        str(ROOT / "examples/brands/acme-coffee.yaml"), "--size", "1024x1024", "--json",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 5, (out, err)
    result = json.loads(out)
    assert result["status"] == "failed" and result["stop_cause"] == "providers_unavailable"
    assert result["reason"].startswith("no usable provider: openai: 503 ×")
    assert "breaker open" in result["reason"]
    assert result["images"] == []
    # the preview renderer was not silently used instead of the provider the user configured
    assert all("procedural" not in d["reason"] for d in result["decisions"] if d["node"] == "plan")
    models = {r["body"].get("model") for r in down_server.requests}
    assert models <= {"gpt-image-1-mini", "gpt-image-1"}


def test_the_preview_renderer_is_left_out_when_a_real_provider_is_configured(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_acme(settings, db)
    request = GenerationRequest(brief="a cup", brand="Acme Coffee")

    def ladder(config: Settings, wanted: GenerationRequest) -> list[ModelSpec]:
        policy = brand_run_policy(config, db, wanted)
        return model_ladder(config, catalog_models(db, config), wanted, policy)

    assert {m.provider for m in ladder(settings, request)} == {"procedural"}
    configured = settings.model_copy(update={"openai_api_key": KEY})
    providers = {m.provider for m in ladder(configured, request)}
    assert providers == {"openai"}
    allowed = request.model_copy(update={"allow_preview": True})
    providers = {m.provider for m in ladder(configured, allowed)}
    assert providers == {"openai", "procedural"}
    only = request.model_copy(update={"providers": ["procedural"]})
    providers = {m.provider for m in ladder(configured, only)}
    assert providers == {"procedural"}
    folder = settings.data_dir / "policies"
    folder.mkdir(parents=True)
    (folder / "acme-coffee.yaml").write_text("allow_preview: true\n")
    providers = {m.provider for m in ladder(configured, request)}
    assert providers == {"openai", "procedural"}
    (folder / "acme-coffee.yaml").write_text("providers: [procedural]\n")
    providers = {m.provider for m in ladder(configured, request)}
    assert providers == {"procedural"}


def test_the_allow_list_keeps_a_run_on_the_providers_named(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database, down_server: FakeImagesApp,
    tmp_path: Path,
) -> None:  # fmt: skip
    kit = str(ROOT / "examples/brands/acme-coffee.yaml")
    code, out, err = run_cli(
        capsys, "generate", "a teal coffee cup", "--brand", kit, "--size", "256x256",
        "--providers", "procedural", "--json", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code in (0, 4), err
    assert down_server.requests == [], "openai was configured but left out by --providers"
    result = json.loads(out)
    assert all(image["preview"] is True for image in result["images"])
    receipt = json.loads((tmp_path / "out" / "receipt.json").read_text())
    assert all(r["preview"] is True for r in receipt["receipts"])
    for bad, message in (
        ("stability", "not configured"),
        ("Open AI", "not a provider name"),
        ("", "providers is empty"),
    ):
        code, out, err = run_cli(
            capsys, "generate", "a cup", "--brand", kit, "--providers", bad,
        )  # fmt: skip
        assert code == 2 and message in err and err.count("\n") == 1, (bad, err)
    code, out, err = run_cli(
        capsys, "generate", "a cup", "--brand", kit, "--providers", "procedural",
        "--model", "openai/gpt-image-1",
    )  # fmt: skip
    assert code == 2 and "allow-list leaves out" in err


class DownBackend:
    """A self-hosted backend that answers every call with a 503, under its own provider name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.calls += 1
        raise RetryableProviderError("503 service unavailable", provider=self.name, status_code=503)


async def test_an_outage_of_every_provider_ends_unavailable_not_unpromising(
    settings: Settings, db: Database
):
    """Errored calls are not billed, so one provider's outage must not make the next provider
    look too dear to try: the run tries each, then stops with exit 5's cause."""
    brand = add_acme(settings, db)
    backends = {name: DownBackend(name) for name in ("selfhosted-a", "selfhosted-b", "hosted")}
    specs = [
        ModelSpec(id="selfhosted-a/sdxl", provider="selfhosted-a", model="sdxl", tier="draft",
                  price_per_image_usd=0.002, quality_baseline=0.5),
        ModelSpec(id="selfhosted-b/sdxl", provider="selfhosted-b", model="sdxl", tier="draft",
                  price_per_image_usd=0.002, quality_baseline=0.5),
        ModelSpec(id="hosted/core", provider="hosted", model="core", tier="standard",
                  price_per_image_usd=0.03, quality_baseline=0.8),
    ]  # fmt: skip
    result = await run_generation(
        _request(brand),
        settings=settings,
        db=db,
        providers={name: ResilientProvider(b, FAST) for name, b in backends.items()},
        models=specs,
        use_memory=False,
        image_moderator=allow,
    )
    assert all(b.calls for b in backends.values()), {n: b.calls for n, b in backends.items()}
    assert result.status == "failed" and result.stop_cause == "providers_unavailable", result.reason
    assert "stop_unpromising" not in [d.action for d in result.decisions]
    assert result.cost_usd == 0


def closed_port() -> int:
    """A port nothing listens on: a connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_exit_code_5_when_every_configured_host_refuses_the_connection(
    capsys: pytest.CaptureFixture[str], settings: Settings, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    """Three providers, five models, every host down: each provider is tried once (its other
    models share the dead host), and the run ends with exit 5 naming each, not with exit 4
    after spending its rounds on one model after another."""
    dead = f"http://127.0.0.1:{closed_port()}"
    for name, value in {
        "A1111_BASE_URL": dead, "COMFYUI_BASE_URL": dead, "STABILITY_BASE_URL": dead,
        "STABILITY_API_KEY": "sk-test-unreachable-0001", "PROVIDER_MAX_ATTEMPTS": "2",
        "PROVIDER_BACKOFF_INITIAL_S": "0.001", "PROVIDER_BACKOFF_MAX_S": "0.001",
    }.items():  # fmt: skip
        monkeypatch.setenv(f"BRANDLOOP_{name}", value)
    get_settings.cache_clear()
    code, out, err = run_cli(
        capsys, "generate", "a teal coffee cup", "--brand",
        str(ROOT / "examples/brands/acme-coffee.yaml"), "--size", "512x512", "--seed", "1",
        "--json", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 5, (out, err)
    result = json.loads(out)
    assert result["stop_cause"] == "providers_unavailable" and result["cost_usd"] == 0
    assert result["reason"] == (
        "no usable provider: a1111: unreachable ×2; comfyui: unreachable ×2; "
        "stability: unreachable ×2"
    ), result["reason"]
    planned = [d for d in result["decisions"] if d["action"] in ("plan", "replan")]
    assert len(planned) == 3, [d["reason"] for d in planned]


class NeverAnswers:
    """A backend that takes every call and never answers it: each may have been billed."""

    name = "flaky"

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.calls += 1
        raise UnknownOutcomeError("flaky sent no answer (ReadTimeout)", provider=self.name)


async def test_a_budget_spent_on_calls_that_never_answered_ends_unavailable(
    settings: Settings, db: Database
):
    """Every call went out and none came back (each held at its reservation): the budget
    runs out before the breaker opens. That ended exit 4, "budget spent", with nothing about
    the outage (outside tester, the same with a cheap brand history and the stopping rule);
    every call failed at the provider, so it ends as providers unavailable (exit 5), the
    failures named beside what stopped it."""
    brand = add_acme(settings, db)
    specs = [
        ModelSpec(id="flaky/cheap", provider="flaky", model="cheap", tier="draft",
                  price_per_image_usd=0.02, quality_baseline=0.9),
        ModelSpec(id="flaky/dear", provider="flaky", model="dear", tier="premium",
                  price_per_image_usd=0.03, quality_baseline=0.9),
    ]  # fmt: skip
    backend = NeverAnswers()
    provider = ResilientProvider(backend, dataclasses.replace(FAST, breaker_failures=99))
    request = _request(brand).model_copy(update={"budget_usd": 0.05})
    result = await run_generation(
        request, settings=settings, db=db, providers={"flaky": provider}, models=specs,
        use_memory=False, use_cache=False, image_moderator=allow,
    )  # fmt: skip
    assert backend.calls >= 1
    assert result.status == "failed" and result.stop_cause == "providers_unavailable", result
    assert "every call failed: flaky: no answer ×" in result.reason, result.reason
    assert result.images == [] and result.cost_usd > 0  # held until reconciled
