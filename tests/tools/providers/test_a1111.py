"""The AUTOMATIC1111 adapter against its documented wire format (httpx.MockTransport)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from brandloop.providers import ImageRequest
from brandloop.tools.providers.a1111 import A1111Provider, same_checkpoint
from brandloop.tools.providers.errors import (
    MalformedResponseError,
    RetryableProviderError,
    TerminalProviderError,
)
from tests.tools.providers.conftest import b64png, client_for

BASE = "http://127.0.0.1:7860"


def answer(images: list[str], info: object) -> httpx.Response:
    return httpx.Response(200, json={"images": images, "parameters": {"steps": 30}, "info": info})


async def test_txt2img_request_and_seeds_from_info(catalog) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        info = json.dumps(
            {
                "seed": 100,
                "all_seeds": [100, 101, 102],
                "infotexts": ["..."],
                "sd_model_name": "sd_xl_base_1.0",
                "sd_model_hash": "31e35c80fc",
            }
        )
        return answer([b64png(64, 64)] * 3, info)

    provider = A1111Provider(client_for(handler), base_url=BASE + "/", models=catalog)
    result = await provider.generate(
        ImageRequest(
            model="sd_xl_base_1.0",
            prompt="a cup",
            negative_prompt="blurry",
            seed=100,
            width=768,
            height=512,
            count=3,
            params={"steps": 20, "sampler_name": "Euler a", "batch_size": 99},
        )
    )
    request = seen[0]
    assert str(request.url) == f"{BASE}/sdapi/v1/txt2img"
    body = json.loads(request.content)
    assert body["prompt"] == "a cup" and body["negative_prompt"] == "blurry"
    assert (body["seed"], body["width"], body["height"]) == (100, 768, 512)
    assert body["batch_size"] == 3 and body["n_iter"] == 1
    assert body["steps"] == 20 and body["cfg_scale"] == 7.0 and body["sampler_name"] == "Euler a"
    assert body["override_settings"] == {"sd_model_checkpoint": "sd_xl_base_1.0"}
    assert [i.seed for i in result.images] == [100, 101, 102]
    assert result.seed == 100
    assert result.cost_usd == pytest.approx(3 * 0.002)


async def test_grid_image_is_dropped_and_random_seed_reported(catalog) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content)["seed"] == -1
        return answer([b64png(128, 64)] + [b64png(64, 64)] * 2, json.dumps({"all_seeds": [5, 6]}))

    provider = A1111Provider(client_for(handler), base_url=BASE)
    result = await provider.generate(ImageRequest(model="default", prompt="x", count=2))
    assert [(i.width, i.seed) for i in result.images] == [(64, 5), (64, 6)]


async def test_basic_auth_is_sent_and_never_echoed() -> None:
    secret = "admin:hunter2-very-secret"

    def handler(request: httpx.Request) -> httpx.Response:
        token = base64.b64encode(secret.encode()).decode()
        assert request.headers["authorization"] == f"Basic {token}"
        return httpx.Response(401, json={"detail": f"bad credentials {secret} {token}"})

    provider = A1111Provider(client_for(handler), base_url=BASE, auth=secret)
    with pytest.raises(TerminalProviderError) as exc:
        await provider.generate(ImageRequest(model="default", prompt="x"))
    assert "hunter2" not in str(exc.value)
    assert base64.b64encode(secret.encode()).decode() not in str(exc.value)


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (answer([b64png()], "{not json"), MalformedResponseError),
        (answer([], "{}"), MalformedResponseError),
        (answer(["aGVsbG8="], "{}"), MalformedResponseError),
        (httpx.Response(200, text="<html>"), MalformedResponseError),
        (httpx.Response(503, text="loading model"), RetryableProviderError),
        (httpx.Response(422, json={"detail": [{"msg": "field required"}]}), TerminalProviderError),
    ],
)
async def test_errors(response: httpx.Response, error: type[Exception]) -> None:
    provider = A1111Provider(client_for(lambda r: response), base_url=BASE)
    with pytest.raises(error):
        await provider.generate(ImageRequest(model="default", prompt="x"))


async def test_a_checkpoint_the_webui_ignored_is_a_terminal_error_naming_both(catalog) -> None:
    """An unknown sd_model_checkpoint is silently ignored upstream: the images come from the
    loaded checkpoint, and must not be recorded under the requested one."""

    def handler(request: httpx.Request) -> httpx.Response:
        info = {
            "all_seeds": [7, 8],
            "sd_model_name": "v1-5-pruned-emaonly",
            "sd_model_hash": "6ce0161689",
        }
        return answer([b64png(64, 64)] * 2, json.dumps(info))

    provider = A1111Provider(client_for(handler), base_url=BASE, models=catalog)
    with pytest.raises(TerminalProviderError) as exc:
        await provider.generate(ImageRequest(model="sd_xl_base_1.0", prompt="x", seed=7, count=2))
    message = str(exc.value)
    assert "v1-5-pruned-emaonly [6ce0161689]" in message and "'sd_xl_base_1.0'" in message
    assert exc.value.billing == "billed" and exc.value.charged_usd == pytest.approx(2 * 0.002)


async def test_a_webui_that_does_not_say_which_checkpoint_it_used_is_refused(catalog) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return answer([b64png(64, 64)], json.dumps({"all_seeds": [7]}))

    provider = A1111Provider(client_for(handler), base_url=BASE, models=catalog)
    with pytest.raises(TerminalProviderError, match="an unnamed checkpoint"):
        await provider.generate(ImageRequest(model="sd_xl_base_1.0", prompt="x", seed=7))


@pytest.mark.parametrize(
    ("requested", "name", "short_hash", "same"),
    [
        ("sd_xl_base_1.0", "sd_xl_base_1.0", "31e35c80fc", True),
        ("sd_xl_base_1.0.safetensors", "sd_xl_base_1.0", "31e35c80fc", True),
        ("models/Stable-diffusion/sd_xl_base_1.0.safetensors", "sd_xl_base_1.0", None, True),
        ("sd_xl_base_1.0.safetensors [31e35c80fc]", "renamed", "31e35c80fc", True),
        ("31e35c80fc", "anything", "31e35c80fc", True),
        ("sd_xl_base_1.0", "v1-5-pruned-emaonly", "6ce0161689", False),
        ("sd_xl_base_1.0 [31e35c80fc]", "sd_xl_base_1.0", "6ce0161689", False),
        ("SD_XL_base_1.0", "sd_xl_base_1.0", "31e35c80fc", False),
        ("sd_xl_base_1.0", None, None, False),
    ],
)
def test_same_checkpoint(
    requested: str, name: str | None, short_hash: str | None, same: bool
) -> None:
    assert same_checkpoint(requested, name, short_hash) is same
