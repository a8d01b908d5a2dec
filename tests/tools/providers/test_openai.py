"""The OpenAI Images adapter against its documented wire format (httpx.MockTransport)."""

from __future__ import annotations

import json

import httpx
import pytest

from brandloop.policies.catalog import image_price
from brandloop.providers import ImageRequest
from brandloop.tools.providers.errors import (
    MalformedResponseError,
    RefusedByProviderError,
    RetryableProviderError,
    TerminalProviderError,
    UnknownOutcomeError,
)
from brandloop.tools.providers.openai import OpenAIImagesProvider
from tests.tools.providers.conftest import b64png, client_for

KEY = "sk-live-abcdefghijklmnop0123"
BASE = "https://gateway.example/v1"


def ok(n: int = 1, *, usage: dict | None = None, side: int = 32) -> httpx.Response:
    body = {
        "created": 1,
        "data": [{"b64_json": b64png(side, side), "revised_prompt": "a revised cup"}] * n,
    }
    if usage is not None:
        body["usage"] = usage
    return httpx.Response(200, json=body, headers={"x-request-id": "req_abc"})


def provider(handler, catalog) -> OpenAIImagesProvider:
    return OpenAIImagesProvider(client_for(handler), api_key=KEY, base_url=BASE, models=catalog)


async def test_request_is_openais_wire_format(catalog) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(2)

    result = await provider(handler, catalog).generate(
        ImageRequest(
            model="gpt-image-1",
            prompt="a cup",
            width=1536,
            height=1024,
            count=2,
            quality="high",
            params={"background": "opaque", "n": 9},
            idempotency_key="bl-123",
        )
    )
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/images/generations"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["idempotency-key"] == "bl-123"
    assert json.loads(request.content) == {
        "model": "gpt-image-1",
        "prompt": "a cup",
        "n": 2,  # params cannot override what brandloop sets
        "size": "1536x1024",
        "quality": "high",
        "background": "opaque",
    }
    assert len(result.images) == 2
    assert result.images[0].format == "png" and result.images[0].width == 32
    assert result.seed is None and result.images[0].seed is None  # OpenAI has no seed
    assert result.provider_request_id == "req_abc"
    assert result.revised_prompt == "a revised cup"
    # no usage in the answer: the catalog's price table, per image by size and quality
    assert result.cost_usd == pytest.approx(2 * 0.25)


async def test_usage_becomes_cost_with_token_prices(catalog) -> None:
    usage = {
        "total_tokens": 1106,
        "input_tokens": 50,
        "output_tokens": 1056,
        "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
    }
    result = await provider(lambda r: ok(usage=usage), catalog).generate(
        ImageRequest(model="gpt-image-1", prompt="a cup")
    )
    assert result.usage == usage
    assert result.cost_usd == pytest.approx((50 * 5 + 1056 * 40) / 1e6)


@pytest.mark.parametrize(
    "usage",
    [
        {"output_tokens": 10**9, "input_tokens": 50},  # $40,000 for one image
        {"output_tokens": -1_000_000, "input_tokens": 50},  # a negative charge
        {"output_tokens": 1056, "input_tokens": -5},
        {"output_tokens": True, "input_tokens": 50},  # a bool is not a count
        {"output_tokens": 1056, "input_tokens_details": {"text_tokens": -9, "image_tokens": 0}},
    ],
)
async def test_a_misreported_usage_is_booked_at_the_catalog_price(catalog, usage: dict) -> None:
    """One answer's usage once set any charge: $40,000 (the tenant's daily quota gone, every
    later job a 402) or a negative one (an image delivered at $0). Past 10 times the catalog's
    price, or with a count that is not one, the catalog's price is the charge."""
    result = await provider(lambda r: ok(usage=usage), catalog).generate(
        ImageRequest(model="gpt-image-1", prompt="a cup")
    )
    spec = next(m for m in catalog if m.id == "openai/gpt-image-1")
    assert result.cost_usd == pytest.approx(image_price(spec, width=1024, height=1024))
    assert result.cost_usd > 0


async def test_a_usage_within_ten_times_the_catalog_price_is_the_charge(catalog) -> None:
    spec = next(m for m in catalog if m.id == "openai/gpt-image-1")
    price = image_price(spec, width=1024, height=1024)
    tokens = int(price * 9 / 40 * 1e6)  # 9 times the catalog's price in output tokens
    result = await provider(lambda r: ok(usage={"output_tokens": tokens}), catalog).generate(
        ImageRequest(model="gpt-image-1", prompt="a cup")
    )
    assert result.cost_usd == pytest.approx(tokens * 40 / 1e6)


async def test_dall_e_asks_for_b64_json_and_default_quality(catalog) -> None:
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return ok()

    await provider(handler, catalog).generate(ImageRequest(model="dall-e-3", prompt="x"))
    assert bodies[0]["response_format"] == "b64_json"
    assert bodies[0]["quality"] == "standard"


@pytest.mark.parametrize("code", ["moderation_blocked", "content_policy_violation"])
async def test_policy_refusal_is_refused(catalog, code: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        error = {"message": "rejected by our safety system", "type": "x", "code": code}
        return httpx.Response(400, json={"error": error})

    with pytest.raises(RefusedByProviderError, match="safety system"):
        await provider(handler, catalog).generate(ImageRequest(model="gpt-image-1", prompt="x"))


async def test_bad_key_is_terminal_and_never_echoes_the_key(catalog) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        message = f"Incorrect API key provided: {KEY}."
        return httpx.Response(401, json={"error": {"message": message, "code": "invalid_api_key"}})

    with pytest.raises(TerminalProviderError) as exc:
        await provider(handler, catalog).generate(ImageRequest(model="gpt-image-1", prompt="x"))
    assert KEY not in str(exc.value)
    assert "Incorrect API key" in str(exc.value)
    assert exc.value.status_code == 401


async def test_bad_request_is_terminal_with_the_backends_message(catalog) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "Invalid size", "code": None}})

    with pytest.raises(TerminalProviderError, match="Invalid size"):
        await provider(handler, catalog).generate(ImageRequest(model="gpt-image-1", prompt="x"))


@pytest.mark.parametrize(
    ("status", "headers", "wait"),
    [
        (429, {"retry-after-ms": "1500"}, 1.5),
        (429, {"retry-after": "7"}, 7.0),
        (429, {"retry-after": "3600"}, 60.0),  # capped
        (503, {}, None),
        (500, {}, None),
        (408, {}, None),
        (409, {}, None),
    ],
)
async def test_transient_statuses_are_retryable_with_retry_after(
    catalog, status: int, headers: dict, wait: float | None
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"message": "busy"}}, headers=headers)

    with pytest.raises(RetryableProviderError) as exc:
        await provider(handler, catalog).generate(ImageRequest(model="gpt-image-1", prompt="x"))
    assert exc.value.retry_after_s == wait
    assert exc.value.status_code == status


async def test_unsent_requests_are_retryable_and_lost_answers_unknown(catalog) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(RetryableProviderError, match="could not be reached"):
        await provider(refuse, catalog).generate(ImageRequest(model="gpt-image-1", prompt="x"))
    with pytest.raises(UnknownOutcomeError, match="may have been billed") as exc:
        await provider(slow, catalog).generate(ImageRequest(model="gpt-image-1", prompt="x"))
    assert exc.value.billing == "unknown"


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (httpx.Response(200, content=b"{oops"), "not JSON"),
        (httpx.Response(200, json=[1, 2]), "not an object"),
        (httpx.Response(200, json={"data": []}), "no images"),
        (httpx.Response(200, json={"data": [{"b64_json": "!!!"}]}), "not base64"),
        (httpx.Response(200, json={"data": [{"b64_json": "aGVsbG8="}]}), "does not decode"),
        (httpx.Response(200, json={"data": [{"url": "https://x/y.png"}]}), "URL"),
        (httpx.Response(200, json={"data": ["nope"]}), "malformed"),
    ],
)
async def test_garbage_is_malformed_not_a_crash(catalog, response, match: str) -> None:
    with pytest.raises(MalformedResponseError, match=match):
        await provider(lambda r: response, catalog).generate(
            ImageRequest(model="gpt-image-1", prompt="x")
        )


async def test_unknown_model_costs_nothing_but_still_works(catalog) -> None:
    result = await provider(lambda r: ok(), catalog).generate(
        ImageRequest(model="some-local-model", prompt="x")
    )
    assert result.cost_usd == 0.0 and len(result.images) == 1
