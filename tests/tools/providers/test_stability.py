"""The Stability v2beta adapter against its documented wire format (httpx.MockTransport)."""

from __future__ import annotations

import base64
from email.parser import BytesParser
from email.policy import default

import httpx
import pytest

from brandloop.providers import ImageRequest
from brandloop.tools.providers.errors import (
    MalformedResponseError,
    RefusedByProviderError,
    RetryableProviderError,
    TerminalProviderError,
)
from brandloop.tools.providers.stability import StabilityProvider
from tests.tools.providers.conftest import client_for, png

KEY = "sk-stab-0123456789abcdef"


def form_fields(request: httpx.Request) -> dict[str, str]:
    """Parse the multipart body the way a server would."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=default).parsebytes(head + request.content)
    return {
        part.get_param("name", header="content-disposition"): part.get_content()
        for part in message.iter_parts()
    }


def image_answer(seed: str = "42", finish: str = "SUCCESS") -> httpx.Response:
    return httpx.Response(
        200,
        content=png(48, 27),
        headers={"content-type": "image/png", "finish-reason": finish, "seed": seed},
    )


def provider(handler, catalog) -> StabilityProvider:
    return StabilityProvider(client_for(handler), api_key=KEY, models=catalog)


@pytest.mark.parametrize(
    ("model", "path", "model_field"),
    [("core", "core", None), ("ultra", "ultra", None), ("sd3.5-large", "sd3", "sd3.5-large")],
)
async def test_multipart_request_per_endpoint(catalog, model, path, model_field) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return image_answer()

    result = await provider(handler, catalog).generate(
        ImageRequest(
            model=model,
            prompt="a mountain",
            negative_prompt="people",
            seed=41,
            aspect_ratio="16:9",
            width=1024,
            height=576,
            params={"style_preset": "photographic"},
        )
    )
    request = seen[0]
    assert str(request.url) == f"https://api.stability.ai/v2beta/stable-image/generate/{path}"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["accept"] == "image/*"
    assert request.headers["content-type"].startswith("multipart/form-data")
    fields = form_fields(request)
    expected = {
        "prompt": "a mountain",
        "negative_prompt": "people",
        "aspect_ratio": "16:9",
        "seed": "41",
        "output_format": "png",
        "style_preset": "photographic",
    }
    if model_field:
        expected["model"] = model_field
    assert fields == expected
    assert result.images[0].seed == 42  # the seed header, not the one asked for
    assert (result.images[0].width, result.images[0].height) == (48, 27)
    assert result.cost_usd == pytest.approx({"core": 0.03, "ultra": 0.08, "sd3": 0.065}[path])


async def test_content_filtered_is_a_refusal_even_with_http_200_and_billed(catalog) -> None:
    with pytest.raises(RefusedByProviderError, match="CONTENT_FILTERED") as exc:
        await provider(lambda r: image_answer(finish="CONTENT_FILTERED"), catalog).generate(
            ImageRequest(model="core", prompt="x")
        )
    # Stability charges for an image it made and then filtered: a resume must not pay again
    assert exc.value.billing == "billed" and exc.value.charged_usd == pytest.approx(0.03)


async def test_content_moderation_403_is_a_refusal(catalog) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"id": "e1", "name": "content_moderation", "errors": ["flagged by moderation"]}
        return httpx.Response(403, json=body)

    with pytest.raises(RefusedByProviderError, match="flagged") as exc:
        await provider(handler, catalog).generate(ImageRequest(model="core", prompt="x"))
    assert exc.value.billing == "not_billed"  # a request refused before generation is free


async def test_json_answer_is_understood(catalog) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {
            "image": base64.b64encode(png()).decode(),
            "finish_reason": "SUCCESS",
            "seed": 7,
        }
        return httpx.Response(200, json=body)

    result = await provider(handler, catalog).generate(ImageRequest(model="core", prompt="x"))
    assert result.images[0].seed == 7


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (
            httpx.Response(402, json={"name": "payment_required", "errors": ["no credits"]}),
            TerminalProviderError,
        ),
        (
            httpx.Response(401, json={"name": "unauthorized", "errors": [f"bad key {KEY}"]}),
            TerminalProviderError,
        ),
        (
            httpx.Response(429, json={"errors": ["slow down"]}, headers={"retry-after": "2"}),
            RetryableProviderError,
        ),
        (httpx.Response(500, text="oops"), RetryableProviderError),
        (
            httpx.Response(200, content=b"not an image", headers={"finish-reason": "SUCCESS"}),
            MalformedResponseError,
        ),
        (
            httpx.Response(200, content=png(), headers={"finish-reason": "ERROR"}),
            MalformedResponseError,
        ),
    ],
)
async def test_errors(catalog, response: httpx.Response, error: type[Exception]) -> None:
    with pytest.raises(error) as exc:
        await provider(lambda r: response, catalog).generate(ImageRequest(model="core", prompt="x"))
    assert KEY not in str(exc.value)


async def test_unknown_model_is_terminal(catalog) -> None:
    with pytest.raises(TerminalProviderError, match="unknown Stability model"):
        await provider(lambda r: image_answer(), catalog).generate(
            ImageRequest(model="dreamshaper", prompt="x")
        )


async def test_several_images_are_several_calls_with_consecutive_seeds(catalog) -> None:
    seeds: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seed = form_fields(request)["seed"]
        seeds.append(seed)
        return image_answer(seed=seed)

    result = await provider(handler, catalog).generate(
        ImageRequest(model="core", prompt="x", seed=10, count=3)
    )
    assert sorted(seeds) == ["10", "11", "12"]
    assert [i.seed for i in result.images] == [10, 11, 12]
