"""The ComfyUI adapter against a fake ComfyUI server on 127.0.0.1: the job is followed by the id
the server answers with, and a call that gave up waiting never queues its job again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from brandloop.agent.runner import run_generation
from brandloop.api.app import create_app
from brandloop.api.config import ApiSettings
from brandloop.domain import GenerationRequest
from brandloop.policies.agent import AgentPolicy
from brandloop.policies.brandkit import load_brand_kit
from brandloop.policies.catalog import load_catalog
from brandloop.providers import ImageRequest
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import get_settings
from brandloop.tools.providers.comfyui import KEY_FIELD, ComfyUIProvider, fill, load_workflow
from brandloop.tools.providers.errors import (
    MalformedResponseError,
    TerminalProviderError,
    UnknownOutcomeError,
)
from brandloop.tools.providers.resilience import ProviderLimits, ResilientProvider
from tests.api.http.conftest import Keys, brand_kit
from tests.fakes.comfyui_server import FakeComfyApp
from tests.fakes.provider_server import serve
from tests.tools.providers.conftest import client_for

pytestmark = pytest.mark.server

REQUEST = ImageRequest(
    model="sd_xl_base_1.0.safetensors",
    prompt="a lighthouse",
    negative_prompt="text",
    seed=1234,
    width=832,
    height=1216,
    idempotency_key="bl-abc",
)


@pytest.fixture
async def comfy() -> AsyncIterator[Callable[..., ComfyUIProvider]]:
    """Adapters on real clients to the fake server, closed after the test."""
    clients: list[httpx.AsyncClient] = []

    def make(base: str, *, deadline_s: float = 30.0) -> ComfyUIProvider:
        clients.append(httpx.AsyncClient(timeout=10))
        return ComfyUIProvider(
            clients[-1],
            base_url=base,
            models=load_catalog(),
            deadline_s=deadline_s,
            poll_interval_s=0.02,
        )

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def fake() -> FakeComfyApp:
    return FakeComfyApp()


@pytest.fixture
def base(fake: FakeComfyApp) -> Iterator[str]:
    with serve(fake, prefix="") as url:
        yield url


async def test_queue_poll_view_with_the_workflow_filled_in(
    base: str, fake: FakeComfyApp, comfy: Callable[..., ComfyUIProvider]
) -> None:
    fake.own_ids = False  # a newer server keeps the id the client chose
    provider = comfy(base)
    result = await provider.generate(REQUEST)
    (body,) = fake.posts
    assert body["prompt_id"] == provider.prompt_id(REQUEST)
    assert body["extra_data"] == {KEY_FIELD: "bl-abc"}
    graph = body["prompt"]
    assert graph["6"]["inputs"]["text"] == "a lighthouse"
    assert graph["7"]["inputs"]["text"] == "text"
    assert graph["3"]["inputs"]["seed"] == 1234
    assert graph["5"]["inputs"] == {"width": 832, "height": 1216, "batch_size": 1}
    assert graph["4"]["inputs"]["ckpt_name"] == "sd_xl_base_1.0.safetensors"
    assert fake.views == [
        {"filename": f"{body['prompt_id']}.png", "subfolder": "", "type": "output"}
    ]
    assert result.provider_request_id == body["prompt_id"]
    assert result.images[0].seed == 1234
    assert result.cost_usd == pytest.approx(0.002)


async def test_a_slow_server_with_its_own_ids_runs_the_job_once(
    base: str, fake: FakeComfyApp, comfy: Callable[..., ComfyUIProvider]
) -> None:
    """The adapter gives up waiting three times before the job is done; each retry finds the job
    in the queue (by its key) and waits on, so it is queued once and fetched by the server's id."""
    fake.run_s = 1.0
    adapter = comfy(base, deadline_s=0.3)
    provider = ResilientProvider(
        adapter, ProviderLimits(max_attempts=10, backoff_initial_s=0.01, backoff_max_s=0.02)
    )
    result = await provider.generate(REQUEST)
    (server_id,) = fake.history
    assert len(fake.posts) == 1, "the job was queued again"
    assert server_id != adapter.prompt_id(REQUEST)  # the server ignored the client's id
    assert result.provider_request_id == server_id and result.tries >= 2
    assert server_id in fake.history_reads  # it polled the job by the id the server gave
    assert fake.views and fake.views[-1]["filename"] == f"{server_id}.png"
    # a resumed run calls again with the same key: the finished job is reused, not queued
    again = await adapter.generate(REQUEST)
    assert len(fake.posts) == 1 and again.provider_request_id == server_id


async def test_a_job_still_pending_from_an_earlier_call_is_waited_for(
    base: str, fake: FakeComfyApp, comfy: Callable[..., ComfyUIProvider]
) -> None:
    fake.run_s = 0.2
    with pytest.raises(UnknownOutcomeError, match="still queued or running"):
        await comfy(base, deadline_s=0.05).generate(REQUEST)
    result = await comfy(base).generate(REQUEST)  # e.g. after a crash: another process
    assert len(fake.posts) == 1
    assert result.provider_request_id == next(iter(fake.history))


async def test_an_execution_error_is_terminal_and_billed(
    base: str, fake: FakeComfyApp, comfy: Callable[..., ComfyUIProvider]
) -> None:
    fake.fail_with = "CUDA out of memory"
    with pytest.raises(TerminalProviderError, match="CUDA out of memory") as exc:
        await comfy(base).generate(REQUEST)
    assert exc.value.billing == "billed"


async def test_a_rejected_workflow_is_terminal(
    base: str, fake: FakeComfyApp, comfy: Callable[..., ComfyUIProvider]
) -> None:
    fake.reject = {
        "error": {"type": "prompt_outputs_failed_validation", "message": "failed validation"},
        "node_errors": {"4": {"errors": ["ckpt not found"]}},
    }
    with pytest.raises(TerminalProviderError, match="ckpt not found") as exc:
        await comfy(base).generate(REQUEST)
    assert exc.value.billing == "not_billed"


async def test_garbage_is_malformed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy error</html>")

    provider = ComfyUIProvider(client_for(handler), base_url="http://127.0.0.1:9")
    with pytest.raises(MalformedResponseError):
        await provider.generate(REQUEST)


async def test_a_run_on_a_slow_comfyui_completes_with_one_queued_job(
    base: str,
    fake: FakeComfyApp,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    acme_kit_path: Path,
) -> None:
    """Through the agent: the run's one ComfyUI call outlives the adapter's deadline twice."""
    fake.run_s = 0.8
    monkeypatch.setenv("BRANDLOOP_COMFYUI_BASE_URL", base)
    monkeypatch.setenv("BRANDLOOP_COMFYUI_POLL_INTERVAL_S", "0.02")
    monkeypatch.setenv("BRANDLOOP_PROVIDER_TIMEOUT_S", "0.3")  # the adapter's wait per try
    monkeypatch.setenv("BRANDLOOP_PROVIDER_MAX_ATTEMPTS", "10")
    monkeypatch.setenv("BRANDLOOP_PROVIDER_BACKOFF_INITIAL_S", "0.01")
    monkeypatch.setenv("BRANDLOOP_PROVIDER_BACKOFF_MAX_S", "0.02")
    get_settings.cache_clear()
    configured = get_settings()
    with db.session() as session:
        crud.upsert_brand(session, tenant="default", kit=load_brand_kit(acme_kit_path))
    result = await run_generation(
        GenerationRequest(brief="a lighthouse", brand="Acme Coffee", size="64x64", seed=9),
        settings=configured,
        db=db,
        use_memory=False,
        models=[m for m in load_catalog() if m.id == "comfyui/sdxl-base"],
        policy=AgentPolicy(accept_composite=0.0, require_all_signals=False),
    )
    assert result.images, result.reason
    assert len(fake.posts) == 1
    with db.session() as session:
        (attempt,) = crud.list_attempts(session, run_id=result.run_id)
    assert attempt.provider_request_id == next(iter(fake.history))
    assert attempt.tries >= 2 and attempt.billing == "billed"


@pytest.mark.slow
def test_a_job_on_a_slow_comfyui_through_the_api_is_queued_once(
    base: str, fake: FakeComfyApp, db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Through the HTTP API a user would call: the server assigns its own ``prompt_id`` and
    takes longer than the adapter waits, twice over. The job completes once, ComfyUI queues it
    once, and the image is fetched by the server's id. (The fake paints a flat square: the
    policy accepts any image, as the agent-level test above does.)"""
    fake.run_s = 0.8
    policy = tmp_path / "agent.yaml"
    policy.write_text("accept_composite: 0.0\nrequire_all_signals: false\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    monkeypatch.setenv("BRANDLOOP_COMFYUI_BASE_URL", base)
    monkeypatch.setenv("BRANDLOOP_COMFYUI_POLL_INTERVAL_S", "0.02")
    monkeypatch.setenv("BRANDLOOP_PROVIDER_TIMEOUT_S", "0.3")  # the adapter's wait per try
    monkeypatch.setenv("BRANDLOOP_PROVIDER_MAX_ATTEMPTS", "10")
    monkeypatch.setenv("BRANDLOOP_PROVIDER_BACKOFF_INITIAL_S", "0.01")
    monkeypatch.setenv("BRANDLOOP_PROVIDER_BACKOFF_MAX_S", "0.02")
    get_settings.cache_clear()
    app = create_app(get_settings(), ApiSettings(workers=1), use_memory=False, database=db)
    keys = Keys(db)
    body = {"brief": "a lighthouse", "brand": "Acme Coffee", "size": "64x64", "seed": 9}
    with TestClient(app, raise_server_exceptions=False) as client:
        admin = keys["A", "admin"]
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).status_code == 201
        answer = client.post(
            "/v1/generations?wait=120", json={**body, "model": "comfyui/sdxl-base"}, headers=admin
        )
        assert answer.status_code == 200, answer.text
        job = answer.json()
        assert job["state"] == "succeeded", job["error"]
        trace = client.get(f"/v1/runs/{job['run_id']}/trace", headers=admin).json()
        (image,) = job["result"]["images"]
        served = client.get(f"/v1/artifacts/{image['sha256']}", headers=admin)
        assert served.status_code == 200 and served.content[:4] == b"\x89PNG"
    assert len(fake.posts) == 1, "the job was queued twice"
    (server_id,) = fake.history
    assert server_id != fake.posts[0].get("prompt_id"), "the server assigned its own id"
    (attempt,) = trace["attempts"]
    assert attempt["provider_request_id"] == server_id and attempt["tries"] >= 2
    assert attempt["billing"] == "billed" and attempt["model"] == "comfyui/sdxl-base"
    assert server_id in fake.history_reads
    assert [v["filename"] for v in fake.views] == [f"{server_id}.png"]


def test_fill_replaces_only_whole_placeholders() -> None:
    graph = load_workflow()
    filled = fill(graph, {"prompt": "p", "seed": 1, "steps": 2})
    assert filled["3"]["inputs"]["seed"] == 1 and filled["3"]["inputs"]["steps"] == 2
    assert filled["9"]["inputs"]["filename_prefix"] == "brandloop"
    assert graph["3"]["inputs"]["seed"] == "$seed"  # the template is not changed
