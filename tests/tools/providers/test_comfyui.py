"""The ComfyUI adapter: queue, poll the history, fetch the outputs (httpx.MockTransport)."""

from __future__ import annotations

import json

import httpx
import pytest

from brandloop.providers import ImageRequest
from brandloop.tools.providers.comfyui import ComfyUIProvider, fill, load_workflow
from brandloop.tools.providers.errors import (
    MalformedResponseError,
    RetryableProviderError,
    TerminalProviderError,
)
from tests.tools.providers.conftest import client_for, png

BASE = "http://127.0.0.1:8188"
REQUEST = ImageRequest(
    model="sd_xl_base_1.0.safetensors",
    prompt="a lighthouse",
    negative_prompt="text",
    seed=1234,
    width=832,
    height=1216,
    idempotency_key="bl-abc",
)


class FakeComfy:
    """Just enough of ComfyUI's HTTP API: /prompt, /history/{id}, /view."""

    def __init__(self, *, polls_before_done: int = 2, status: str = "success") -> None:
        self.polls_before_done = polls_before_done
        self.status = status
        self.queued: list[dict] = []
        self.views: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/prompt" and request.method == "POST":
            body = json.loads(request.content)
            self.queued.append(body)
            return httpx.Response(
                200, json={"prompt_id": body["prompt_id"], "number": 1, "node_errors": {}}
            )
        if path.startswith("/history/"):
            prompt_id = path.rsplit("/", 1)[1]
            if not self.queued or self.polls_before_done > 0:
                self.polls_before_done -= bool(self.queued)
                return httpx.Response(200, json={})
            entry = {
                "prompt": [],
                "outputs": {
                    "9": {
                        "images": [{"filename": "bl_0001_.png", "subfolder": "", "type": "output"}]
                    }
                },
                "status": {
                    "status_str": self.status,
                    "completed": True,
                    "messages": [["execution_error", {"exception_message": "CUDA out of memory"}]],
                },
            }
            return httpx.Response(200, json={prompt_id: entry})
        if path == "/view":
            self.views.append(dict(request.url.params))
            return httpx.Response(
                200, content=png(832, 1216), headers={"content-type": "image/png"}
            )
        return httpx.Response(404)


async def no_sleep(_: float) -> None:
    return None


async def test_queue_poll_view_with_the_workflow_filled_in(catalog) -> None:
    fake = FakeComfy()
    provider = ComfyUIProvider(client_for(fake), base_url=BASE, models=catalog, sleep=no_sleep)
    result = await provider.generate(REQUEST)
    assert len(fake.queued) == 1
    body = fake.queued[0]
    assert body["prompt_id"] == provider.prompt_id(REQUEST)  # chosen by the client
    graph = body["prompt"]
    assert graph["6"]["inputs"]["text"] == "a lighthouse"
    assert graph["7"]["inputs"]["text"] == "text"
    assert graph["3"]["inputs"]["seed"] == 1234
    assert graph["5"]["inputs"] == {"width": 832, "height": 1216, "batch_size": 1}
    assert graph["4"]["inputs"]["ckpt_name"] == "sd_xl_base_1.0.safetensors"
    assert fake.views == [{"filename": "bl_0001_.png", "subfolder": "", "type": "output"}]
    assert result.provider_request_id == body["prompt_id"]
    assert result.images[0].seed == 1234 and result.images[0].height == 1216
    assert result.cost_usd == pytest.approx(0.002)


async def test_a_finished_job_is_fetched_not_queued_again(catalog) -> None:
    fake = FakeComfy(polls_before_done=0)
    fake.queued.append({"prompt_id": "earlier"})  # the history already holds the job
    provider = ComfyUIProvider(client_for(fake), base_url=BASE, sleep=no_sleep)
    await provider.generate(REQUEST)
    assert len(fake.queued) == 1  # nothing new queued: the earlier call is reused


async def test_execution_error_is_terminal_with_comfys_message() -> None:
    fake = FakeComfy(status="error")
    provider = ComfyUIProvider(client_for(fake), base_url=BASE, sleep=no_sleep)
    with pytest.raises(TerminalProviderError, match="CUDA out of memory"):
        await provider.generate(REQUEST)


async def test_deadline_is_retryable() -> None:
    fake = FakeComfy(polls_before_done=10**6)
    provider = ComfyUIProvider(
        client_for(fake), base_url=BASE, deadline_s=0.05, poll_interval_s=0.01
    )
    with pytest.raises(RetryableProviderError, match="did not finish"):
        await provider.generate(REQUEST)


async def test_rejected_workflow_is_terminal() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/history/"):
            return httpx.Response(200, json={})
        body = {
            "error": {
                "type": "prompt_outputs_failed_validation",
                "message": "Prompt outputs failed validation",
            },
            "node_errors": {"4": {"errors": ["ckpt not found"]}},
        }
        return httpx.Response(400, json=body)

    provider = ComfyUIProvider(client_for(handler), base_url=BASE, sleep=no_sleep)
    with pytest.raises(TerminalProviderError, match="ckpt not found"):
        await provider.generate(REQUEST)


async def test_garbage_history_is_malformed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy error</html>")

    provider = ComfyUIProvider(client_for(handler), base_url=BASE, sleep=no_sleep)
    with pytest.raises(MalformedResponseError):
        await provider.generate(REQUEST)


def test_fill_replaces_only_whole_placeholders() -> None:
    graph = load_workflow()
    filled = fill(graph, {"prompt": "p", "seed": 1, "steps": 2})
    assert filled["3"]["inputs"]["seed"] == 1 and filled["3"]["inputs"]["steps"] == 2
    assert filled["9"]["inputs"]["filename_prefix"] == "brandloop"
    assert graph["3"]["inputs"]["seed"] == "$seed"  # the template is not changed
