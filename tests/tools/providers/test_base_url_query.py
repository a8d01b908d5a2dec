"""A base URL with a query (an Azure-style gateway's ``?api-version=``, a key in ``?api_key=``)
is called at the endpoint's path with the query kept after it, by every adapter that joins a
path to a configured URL, and an error that echoes the request's URL names no credential of
it (docs/providers.md, "Configuration"). Before, the path went inside the query
(``/v1?api_key=X/images/generations``) and a 400 echoing it put the key into the run (tester26d,
defects 1 and 2)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from brandloop.policies.catalog import load_catalog
from brandloop.providers import ImageRequest
from brandloop.settings import WriterSettings
from brandloop.tools.moderation.hosted import OpenAIModeration
from brandloop.tools.providers.a1111 import A1111Provider
from brandloop.tools.providers.comfyui import ComfyUIProvider
from brandloop.tools.providers.errors import TerminalProviderError
from brandloop.tools.providers.openai import OpenAIImagesProvider
from brandloop.tools.providers.stability import StabilityProvider
from tests.fakes.comfyui_server import FakeComfyApp
from tests.fakes.provider_server import Receive, Scope, Send, serve
from tests.tools.providers.conftest import b64png, client_for, png

QUERY_KEY = "UrlQueryKey-555aaa"
QUERY = {"api-version": "2024-02-01", "api_key": QUERY_KEY}
QUERY_TEXT = f"api-version=2024-02-01&api_key={QUERY_KEY}"
KEY = "sk-test-bearer-0123456789abcdef"

Call = Callable[[httpx.AsyncClient, str], Awaitable[object]]


async def _openai(client: httpx.AsyncClient, base: str) -> object:
    provider = OpenAIImagesProvider(client, api_key=KEY, base_url=base)
    return await provider.generate(ImageRequest(model="gpt-image-1-mini", prompt="a cup"))


async def _stability(client: httpx.AsyncClient, base: str) -> object:
    provider = StabilityProvider(client, api_key=KEY, base_url=base, models=load_catalog())
    return await provider.generate(ImageRequest(model="core", prompt="a cup"))


async def _a1111(client: httpx.AsyncClient, base: str) -> object:
    provider = A1111Provider(client, base_url=base)
    return await provider.generate(ImageRequest(model="default", prompt="a cup"))


async def _moderation(client: httpx.AsyncClient, base: str) -> object:
    hosted = OpenAIModeration(api_key=KEY, base_url=base, client=client, max_attempts=1)
    return await hosted.moderate(text="a calm cup", source="brief")


def _answer(request: httpx.Request) -> httpx.Response:
    """What each backend answers on success (its documented shape, as small as it goes)."""
    path = request.url.path
    if path.endswith("/images/generations"):
        return httpx.Response(200, json={"data": [{"b64_json": b64png()}]})
    if "/v2beta/stable-image/generate/" in path:
        headers = {"content-type": "image/png", "finish-reason": "SUCCESS", "seed": "7"}
        return httpx.Response(200, content=png(), headers=headers)
    if path.endswith("/sdapi/v1/txt2img"):
        return httpx.Response(200, json={"images": [b64png()], "info": '{"all_seeds": [7]}'})
    if path.endswith("/moderations"):
        return httpx.Response(200, json={"results": [{"categories": {}, "category_scores": {}}]})
    return httpx.Response(404, json={"error": f"no route {path}"})


#: adapter, what it calls below the base URL's path
ADAPTERS: dict[str, tuple[Call, str]] = {
    "openai": (_openai, "/images/generations"),
    "stability": (_stability, "/v2beta/stable-image/generate/core"),
    "a1111": (_a1111, "/sdapi/v1/txt2img"),
    "moderation": (_moderation, "/moderations"),
}


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
async def test_the_base_urls_query_stays_after_the_endpoints_path(adapter: str) -> None:
    call, endpoint = ADAPTERS[adapter]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _answer(request)

    async with client_for(handler) as client:
        await call(client, f"https://gateway.example/v1?{QUERY_TEXT}")
    (request,) = seen
    assert request.url.path == f"/v1{endpoint}"
    assert dict(request.url.params) == QUERY


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
async def test_an_error_echoing_the_request_url_names_no_credential_of_it(adapter: str) -> None:
    call, _ = ADAPTERS[adapter]

    def handler(request: httpx.Request) -> httpx.Response:
        message = f"bad url {request.url} (path {request.url.raw_path.decode()})"
        return httpx.Response(400, json={"error": {"message": message}})

    async with client_for(handler) as client:
        with pytest.raises(TerminalProviderError) as failed:
            await call(client, f"https://gateway.example/v1?{QUERY_TEXT}")
    message = str(failed.value)
    assert "[redacted]" in message and "gateway.example" in message, message
    for part in (QUERY_KEY, QUERY_KEY[:8], QUERY_KEY[-8:], KEY):
        assert part not in message, message


class _Targets:
    """An ASGI app in front of another that keeps each request's path and query."""

    def __init__(self, app: FakeComfyApp) -> None:
        self.app = app
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = dict(httpx.QueryParams(scope["query_string"].decode()))
            self.seen.append((scope["method"], scope["path"], query))
        await self.app(scope, receive, send)


@pytest.fixture
def comfy_targets() -> Iterator[tuple[_Targets, str]]:
    targets = _Targets(FakeComfyApp())
    with serve(targets, prefix="") as url:
        yield targets, url


@pytest.mark.server
async def test_comfyui_keeps_the_query_on_every_call(
    comfy_targets: tuple[_Targets, str],
) -> None:
    """Queue, history, polling and view: each is the server's own path, the query after it."""
    targets, url = comfy_targets
    async with httpx.AsyncClient(timeout=10) as client:
        provider = ComfyUIProvider(
            client, base_url=f"{url}/?token={QUERY_KEY}", poll_interval_s=0.02, deadline_s=30
        )
        request = ImageRequest(model="sd_xl_base_1.0.safetensors", prompt="a cup", seed=3)
        result = await provider.generate(request.model_copy(update={"idempotency_key": "bl-q"}))
    assert result.images
    paths = {path for _, path, _ in targets.seen}
    assert {"/queue", "/prompt", "/view"} <= paths, targets.seen
    assert any(path.startswith("/history") for path in paths), targets.seen
    for method, path, query in targets.seen:
        assert query.get("token") == QUERY_KEY, (method, path, query)


@pytest.mark.server
async def test_a_comfyui_error_echoing_its_url_names_no_credential_of_it() -> None:
    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        target = f"{scope['path']}?{scope['query_string'].decode()}"
        body = json.dumps({"error": f"bad url {target}"}).encode()
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": body})

    with serve(echo, prefix="") as url:
        async with httpx.AsyncClient(timeout=10) as client:
            provider = ComfyUIProvider(client, base_url=f"{url}/?token={QUERY_KEY}")
            with pytest.raises(TerminalProviderError) as failed:
                await provider.generate(ImageRequest(model="m", prompt="a cup", seed=3))
    message = str(failed.value)
    assert "[redacted]" in message and QUERY_KEY[:8] not in message, message
    assert QUERY_KEY[-8:] not in message, message


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("openai", {"base_url": "https://llm.example/v1", "default_query": QUERY}),
        ("ollama", {"base_url": "https://llm.example/v1", "client_kwargs": {"params": QUERY}}),
    ],
)
def test_the_writers_base_url_gives_its_query_to_the_client_apart(
    provider: str, expected: dict[str, object]
) -> None:
    """``ChatOpenAI`` and the Ollama client append their paths to the whole base URL too."""
    from brandloop.agent.writer import base_url_kwargs

    cfg = WriterSettings(
        provider=provider,  # type: ignore[arg-type]
        model="m",
        base_url=f"https://llm.example/v1?{QUERY_TEXT}",
    )
    assert base_url_kwargs(cfg) == expected
    plain = cfg.model_copy(update={"base_url": "https://llm.example/v1"})
    assert base_url_kwargs(plain) == {"base_url": "https://llm.example/v1"}
