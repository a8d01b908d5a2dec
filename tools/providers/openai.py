"""OpenAI Images (``POST {base}/images/generations``) and any server that speaks its wire format.

gpt-image models always answer base64 and report token ``usage`` (turned into cost with the
catalog's token prices); dall-e models are asked for ``response_format=b64_json``. OpenAI has
no seed. A policy refusal is HTTP 400 with code ``moderation_blocked`` (gpt-image) or
``content_policy_violation`` (dall-e); it becomes ``RefusedByProviderError``.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from brandloop.policies.catalog import image_price, usage_cost
from brandloop.providers import GeneratedImage, ImageRequest, ImageResult
from brandloop.tools.providers._http import (
    HostedApiProvider,
    decode_b64,
    error_message,
    inspect_image,
    json_body,
    raise_for_status,
    reading_answer,
    redact,
    send,
)
from brandloop.tools.providers.errors import MalformedResponseError, RefusedByProviderError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: A call whose reported usage prices it above this multiple of the catalog's price is booked at
#: the catalog's price (a misreported answer, as ``spend reconcile`` calls a charge past 10 times
#: its reservation a likely typo); within it, the usage is the charge
USAGE_TRUSTED_MULTIPLE = 10.0
log = logging.getLogger(__name__)
REFUSAL_CODES = frozenset({"moderation_blocked", "content_policy_violation"})
# Fields brandloop sets itself; ``params`` may add others (background, style, moderation, ...).
_RESERVED = frozenset({"model", "prompt", "n", "size", "quality", "response_format"})


class OpenAIImagesProvider(HostedApiProvider):
    """``ImageProvider`` over the OpenAI Images API."""

    default_base_url = DEFAULT_BASE_URL
    name = "openai"

    def body(self, request: ImageRequest) -> dict[str, Any]:
        """The JSON body for ``request`` (public so tests can check the wire format)."""
        body: dict[str, Any] = {
            "model": request.model,
            "prompt": request.prompt,
            "n": request.count,
            "size": f"{request.width}x{request.height}",
        }
        spec = self._specs.get(request.model)
        quality = request.quality or (spec.default_quality if spec else None)
        if quality:
            body["quality"] = quality
        if request.model.startswith("dall-e"):
            body["response_format"] = "b64_json"
        body.update({k: v for k, v in request.params.items() if k not in _RESERVED})
        return body

    async def generate(self, request: ImageRequest) -> ImageResult:
        secret = self._key.get_secret_value()
        headers = {"Authorization": f"Bearer {secret}"}
        if request.idempotency_key:
            headers["Idempotency-Key"] = request.idempotency_key
        response = await send(
            self._client,
            "POST",
            self.url("/images/generations"),
            provider=self.name,
            json=self.body(request),
            headers=headers,
        )
        self._raise_refusal(response)
        if not response.is_success:  # the secrets (the base URL parsed) only when needed
            raise_for_status(response, provider=self.name, secrets=self._secrets())
        with reading_answer(self.name):
            return self._result(request, response)

    def _raise_refusal(self, response: httpx.Response) -> None:
        if response.status_code != 400:
            return
        try:
            error = response.json().get("error") or {}
        except (ValueError, AttributeError):
            return
        if not isinstance(error, dict):
            return
        if error.get("code") in REFUSAL_CODES:
            raise RefusedByProviderError(
                redact(f"openai refused the prompt: {error_message(response)}", self._secrets()),
                provider=self.name,
                status_code=400,
            )

    def _result(self, request: ImageRequest, response: httpx.Response) -> ImageResult:
        body = json_body(response, provider=self.name)
        data = body.get("data")
        if not isinstance(data, list) or not data:
            raise MalformedResponseError("openai answered no images", provider=self.name)
        images: list[GeneratedImage] = []
        revised: str | None = None
        for item in data:
            if not isinstance(item, dict):
                raise MalformedResponseError(
                    "openai answered a malformed image entry", provider=self.name
                )
            if "b64_json" not in item and item.get("url"):
                raise MalformedResponseError(
                    "openai answered an image URL; brandloop asks for b64_json", provider=self.name
                )
            raw = decode_b64(item.get("b64_json"), provider=self.name)
            fmt, width, height = inspect_image(raw, provider=self.name)
            images.append(GeneratedImage(data=raw, format=fmt, width=width, height=height))
            revised = revised or item.get("revised_prompt")
        reported = body.get("usage")
        usage = reported if isinstance(reported, dict) else {}
        return ImageResult(
            images=images,
            seed=None,
            provider_request_id=response.headers.get("x-request-id"),
            usage=usage,
            cost_usd=self._cost(request, usage, len(images)),
            finish_reason="success",
            revised_prompt=revised if isinstance(revised, str) else None,
        )

    def _cost(self, request: ImageRequest, usage: dict[str, Any], count: int) -> float:
        spec = self._specs.get(request.model)
        if spec is None:
            return 0.0
        price = count * image_price(
            spec, width=request.width, height=request.height, quality=request.quality
        )
        from_usage = usage_cost(spec, usage)
        if from_usage is not None and from_usage <= USAGE_TRUSTED_MULTIPLE * price:
            return from_usage
        if from_usage is not None:  # one bad answer must not book $40,000 and shut the tenant out
            log.warning(
                "%s reported usage worth $%.6f for a call the catalog prices at $%.6f (more than "
                "%g times): booked at the catalog price; check the provider's invoice",
                self.name,
                from_usage,
                price,
                USAGE_TRUSTED_MULTIPLE,
            )
        return round(price, 6)
