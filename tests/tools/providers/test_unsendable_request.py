"""A request that cannot be built or written (a key with a line break or a non-ASCII character
in its header) fails before any byte is sent: a terminal error with ``billing: not_billed``,
never an unknown outcome held as spent, and the key is not in the message."""

from __future__ import annotations

import httpx
import pytest

from brandloop.providers import ImageRequest
from brandloop.tools.providers.errors import TerminalProviderError, billing_of
from brandloop.tools.providers.openai import OpenAIImagesProvider
from brandloop.tools.providers.stability import StabilityProvider
from tests.tools.providers.conftest import client_for

BAD_KEYS = {
    "CR LF": "sk-proj-CANARYq7Xw2Lm9Pz4Rt8Vb\r\n",
    "LF inside": "sk-proj-CANARY\nX-Injected: 1",
    "non-ASCII": "sk-proj-CANARYq7Xw2Lm9Pz4Rt8Vb\u00e9",
    "NUL": "sk-proj-CANARY\x00q7Xw2Lm9",
}
ADAPTERS = {
    "openai": (OpenAIImagesProvider, "gpt-image-1"),
    "stability": (StabilityProvider, "sd3.5-large"),
}


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
@pytest.mark.parametrize("case", sorted(BAD_KEYS))
async def test_a_key_that_cannot_be_sent_is_not_billed(adapter: str, case: str, catalog) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500)

    cls, model = ADAPTERS[adapter]
    provider = cls(client_for(handler), api_key=BAD_KEYS[case], models=catalog)
    with pytest.raises(TerminalProviderError) as caught:
        await provider.generate(ImageRequest(model=model, prompt="a cup", width=1024, height=1024))
    assert seen == []  # nothing reached the transport
    assert billing_of(caught.value) == ("not_billed", None)
    assert "nothing was sent" in str(caught.value)
    assert "CANARY" not in str(caught.value)
