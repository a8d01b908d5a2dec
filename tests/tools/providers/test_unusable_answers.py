"""An answer after a 2xx that brandloop cannot use was very likely billed: every adapter reports
it as ``billing: unknown`` (docs/providers.md). And an answer is read streamed, at most
``MAX_RESPONSE_BYTES`` of it: a huge body is not held in memory whole."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from brandloop.providers import ImageRequest
from brandloop.tools.providers.a1111 import A1111Provider
from brandloop.tools.providers.comfyui import ComfyUIProvider
from brandloop.tools.providers.errors import (
    MalformedResponseError,
    RetryableProviderError,
)
from brandloop.tools.providers.openai import OpenAIImagesProvider
from brandloop.tools.providers.resilience import ProviderLimits, ResilientProvider
from brandloop.tools.providers.stability import StabilityProvider
from tests.tools.providers.conftest import client_for

KEY = "sk-test-unusable-answers-0001"
MIB = 1024 * 1024
MAX_RESPONSE_BYTES = 64 * MIB  # docs/providers.md: an answer is read up to 64 MiB
MAX_ERROR_BODY_BYTES = 64 * 1024  # and an error answer kept to its first 64 KiB
REQUEST = ImageRequest(
    model="gpt-image-1-mini", prompt="a cup", width=1024, height=1024, idempotency_key="bl-k1"
)


class Huge:
    """A streamed body of ``size`` bytes, sent a MiB at a time; counts what was taken."""

    def __init__(self, size: int, chunk: bytes = b"A" * MIB) -> None:
        self.size, self.chunk, self.sent = size, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.size:
            self.sent += len(self.chunk)
            yield self.chunk


async def test_a_huge_2xx_answer_is_not_read_past_the_cap_and_is_billing_unknown(catalog) -> None:
    body = Huge(80 * MIB)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, content=body)

    provider = OpenAIImagesProvider(
        client_for(handler), api_key=KEY, base_url="http://openai.test/v1", models=catalog
    )
    with pytest.raises(MalformedResponseError) as caught:
        await provider.generate(REQUEST)
    assert body.sent <= MAX_RESPONSE_BYTES + MIB, f"read {body.sent / MIB:.0f} MiB of 80"
    assert caught.value.billing == "unknown"
    assert "larger than 64 MiB" in str(caught.value)


async def test_through_the_resilience_layer_it_is_tried_once(catalog) -> None:
    bodies: list[Huge] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(Huge(70 * MIB))
        return httpx.Response(200, content=bodies[-1])

    provider = ResilientProvider(
        OpenAIImagesProvider(
            client_for(handler), api_key=KEY, base_url="http://openai.test/v1", models=catalog
        ),
        ProviderLimits(max_attempts=4, backoff_initial_s=0.001, backoff_max_s=0.001),
    )
    with pytest.raises(MalformedResponseError) as caught:
        await provider.generate(REQUEST)
    assert len(bodies) == 1 and caught.value.billing == "unknown"


async def test_a_huge_error_answer_is_cut_and_keeps_its_status(catalog) -> None:
    body = Huge(20 * MIB, chunk=b'{"error": {"message": "overloaded"}} ' + b"x" * MIB)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, content=body)

    provider = OpenAIImagesProvider(
        client_for(handler), api_key=KEY, base_url="http://openai.test/v1", models=catalog
    )
    with pytest.raises(RetryableProviderError) as caught:
        await provider.generate(REQUEST)
    assert body.sent <= MAX_ERROR_BODY_BYTES + len(body.chunk)
    assert caught.value.status_code == 503 and caught.value.billing == "not_billed"


BROKEN = b'{"data": [{"b64_json": "iVBORw0KGgo'  # cut off mid-JSON


def _openai(catalog) -> OpenAIImagesProvider:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, content=BROKEN)

    return OpenAIImagesProvider(
        client_for(handler), api_key=KEY, base_url="http://openai.test/v1", models=catalog
    )


def _stability(catalog) -> StabilityProvider:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "image/png"}, content=b"not a png")

    return StabilityProvider(
        client_for(handler), api_key=KEY, base_url="http://stability.test", models=catalog
    )


def _a1111(catalog) -> A1111Provider:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, content=BROKEN)

    return A1111Provider(client_for(handler), base_url="http://a1111.test", models=catalog)


def _comfyui(catalog) -> ComfyUIProvider:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/queue":
            return httpx.Response(200, json={"queue_running": [], "queue_pending": []})
        if request.url.path.startswith("/history"):
            return httpx.Response(200, json={})
        if request.url.path == "/prompt":  # queued (the GPU will run it), answer cut off
            return httpx.Response(200, content=b'{"prompt_id": "abc')
        raise AssertionError(request.url)

    return ComfyUIProvider(client_for(handler), base_url="http://comfy.test", models=catalog)


@pytest.mark.parametrize(
    ("make", "model"),
    [
        (_openai, "gpt-image-1-mini"),
        (_stability, "core"),
        (_a1111, "default"),
        (_comfyui, "sd_xl_base_1.0.safetensors"),
    ],
)
async def test_every_adapter_reports_an_unusable_2xx_answer_as_billing_unknown(
    catalog, make, model
) -> None:
    provider = make(catalog)
    request = REQUEST.model_copy(update={"model": model, "seed": 1})
    with pytest.raises(MalformedResponseError) as caught:
        await provider.generate(request)
    assert caught.value.billing == "unknown", str(caught.value)
