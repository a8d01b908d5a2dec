"""The hosted moderation service is a provider too: what it says back - an error, its request
id - is cleaned of every credential the process configures (a key in another setting's URL
included), not only of its own key (docs/providers.md; tester26d, defect 1)."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from brandloop.settings import Settings
from brandloop.tools.moderation.hosted import build_hosted_moderator
from brandloop.tools.providers.errors import TerminalProviderError
from tests.fakes.provider_server import Receive, Scope, Send, serve

GATEWAY_KEY = "GatewayKey-7a6b5c4d3e"
KEY = "sk-test-hosted26-0123456789"


def _echoing(status: int):
    """A moderation server that repeats the gateway key in its request id and, on an error,
    in its message."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if status == 200:
            body = {"results": [{"flagged": False, "categories": {}, "category_scores": {}}]}
        else:
            body = {"error": {"message": f"the gateway refused key {GATEWAY_KEY}"}}
        headers = [(b"content-type", b"application/json"), (b"x-request-id", GATEWAY_KEY.encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    return app


def _moderator(base_url: str):
    settings = Settings(
        moderation_provider="openai",
        moderation_api_key=SecretStr(KEY),
        moderation_base_url=base_url,
        stability_base_url=f"https://stability-gateway.example?api_key={GATEWAY_KEY}",
    )
    moderator = build_hosted_moderator(settings)
    assert moderator is not None
    return moderator


@pytest.mark.server
async def test_an_error_of_the_moderation_service_names_no_configured_credential() -> None:
    with serve(_echoing(400)) as base_url, pytest.raises(TerminalProviderError) as failed:
        await _moderator(base_url).moderate(text="a calm cup", source="brief")
    message = str(failed.value)
    assert message.endswith("the gateway refused key [redacted]"), message


@pytest.mark.server
async def test_the_moderation_services_request_id_names_no_configured_credential() -> None:
    with serve(_echoing(200)) as base_url:
        moderator = _moderator(base_url).with_policy(_moderator(base_url).policy)
        verdict = await moderator.moderate(text="a calm cup", source="brief")
    assert verdict.allowed
    assert verdict.reasons[-1].endswith("request [redacted]"), verdict.reasons
    assert GATEWAY_KEY not in verdict.model_dump_json()
