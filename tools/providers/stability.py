"""Stability AI v2beta: ``POST {base}/v2beta/stable-image/generate/{core|ultra|sd3}``.

A multipart form (prompt, negative_prompt, aspect_ratio, seed, output_format; ``model`` for the
sd3 endpoint), answered with the image bytes (``Accept: image/*``) and the ``finish-reason`` and
``seed`` response headers. A safety block is HTTP 200 with ``finish-reason: CONTENT_FILTERED``,
or HTTP 403 ``content_moderation``; both become ``RefusedByProviderError``. Stability bills the
first (the image was made, then filtered) and not the second, so the refusal says so and a
resumed run never pays for a filtered image again. One image per call.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from brandloop.policies.catalog import image_price
from brandloop.providers import GeneratedImage, ImageRequest, ImageResult
from brandloop.tools.providers._http import (
    HostedApiProvider,
    decode_b64,
    error_message,
    inspect_image,
    raise_for_status,
    reading_answer,
    redact,
    send,
)
from brandloop.tools.providers.errors import (
    MalformedResponseError,
    RefusedByProviderError,
    TerminalProviderError,
)

DEFAULT_BASE_URL = "https://api.stability.ai"
ENDPOINTS = {"core": "core", "ultra": "ultra"}
MAX_SEED = 4_294_967_294
_RESERVED = frozenset({"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format"})


def endpoint(model: str) -> str:
    """``core`` and ``ultra`` have their own endpoints; every sd3* model shares ``sd3``."""
    if model in ENDPOINTS:
        return ENDPOINTS[model]
    if model.startswith("sd3"):
        return "sd3"
    raise ValueError(f"unknown Stability model {model!r}")


class StabilityProvider(HostedApiProvider):
    """``ImageProvider`` over Stability's Stable Image v2beta API."""

    default_base_url = DEFAULT_BASE_URL
    name = "stability"

    def form(self, request: ImageRequest, seed: int | None) -> dict[str, str]:
        """The multipart fields for one image (public so tests can check the wire format)."""
        fields: dict[str, str] = {"prompt": request.prompt, "output_format": "png"}
        if request.negative_prompt:
            fields["negative_prompt"] = request.negative_prompt
        if request.aspect_ratio:
            fields["aspect_ratio"] = request.aspect_ratio
        if seed is not None:
            fields["seed"] = str(seed % (MAX_SEED + 1))
        if endpoint(request.model) == "sd3":
            fields["model"] = request.model
        fields.update({k: str(v) for k, v in request.params.items() if k not in _RESERVED})
        return fields

    async def generate(self, request: ImageRequest) -> ImageResult:
        try:
            path = endpoint(request.model)
        except ValueError as exc:
            raise TerminalProviderError(str(exc), provider=self.name) from exc
        seeds = [None if request.seed is None else request.seed + i for i in range(request.count)]
        spec = self._specs.get(request.model)
        price = (
            image_price(spec, width=request.width, height=request.height, quality=request.quality)
            if spec
            else 0.0
        )
        results = await asyncio.gather(*(self._one(request, path, s, price) for s in seeds))
        images = [image for image, _ in results]
        request_ids = [rid for _, rid in results if rid]
        return ImageResult(
            images=images,
            seed=images[0].seed,
            provider_request_id=",".join(request_ids) or None,
            usage={"images": len(images)},
            cost_usd=round(price * len(images), 6),
            finish_reason="success",
        )

    async def _one(
        self, request: ImageRequest, path: str, seed: int | None, price: float
    ) -> tuple[GeneratedImage, str | None]:
        secret = self._key.get_secret_value()
        headers = {"Authorization": f"Bearer {secret}", "Accept": "image/*"}
        if request.idempotency_key:
            headers["Idempotency-Key"] = request.idempotency_key
        files: dict[str, Any] = {k: (None, v) for k, v in self.form(request, seed).items()}
        response = await send(
            self._client,
            "POST",
            self.url(f"/v2beta/stable-image/generate/{path}"),
            provider=self.name,
            files=files,
            headers=headers,
        )
        if response.status_code == 403 and "moderation" in response.text.lower():
            raise RefusedByProviderError(
                redact(f"stability refused the prompt: {error_message(response)}", self._secrets()),
                provider=self.name,
                status_code=403,
            )
        if not response.is_success:  # the secrets (the base URL parsed) only when needed
            raise_for_status(response, provider=self.name, secrets=self._secrets())
        with reading_answer(self.name):
            return self._read(response, seed, price)

    def _read(
        self, response: httpx.Response, seed: int | None, price: float
    ) -> tuple[GeneratedImage, str | None]:
        raw, finish, seed_header = self._payload(response)
        if finish.upper() == "CONTENT_FILTERED":
            raise RefusedByProviderError(
                "stability filtered the image (finish-reason CONTENT_FILTERED)",
                provider=self.name,
                billing="billed",
                charged_usd=price,
            )
        if finish.upper() not in {"SUCCESS", ""}:
            raise MalformedResponseError(
                f"stability answered finish-reason {finish[:40]!r}", provider=self.name
            )
        fmt, width, height = inspect_image(raw, provider=self.name)
        returned = _int_or_none(seed_header)
        return (
            GeneratedImage(
                data=raw,
                format=fmt,
                width=width,
                height=height,
                seed=returned if returned is not None else seed,
            ),
            response.headers.get("x-request-id") or response.headers.get("request-id"),
        )

    def _payload(self, response: httpx.Response) -> tuple[bytes, str, str | None]:
        """Image bytes, finish reason and seed, from the raw-image or the JSON answer."""
        content_type = response.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            try:
                body = json.loads(response.content)
            except (ValueError, UnicodeDecodeError) as exc:
                raise MalformedResponseError(
                    "stability answered a body that is not JSON", provider=self.name
                ) from exc
            if not isinstance(body, dict):
                raise MalformedResponseError("stability answered a non-object", provider=self.name)
            finish = str(body.get("finish_reason", ""))
            if finish.upper() == "CONTENT_FILTERED":
                return b"", finish, None
            seed = body.get("seed")
            return (
                decode_b64(body.get("image"), provider=self.name),
                finish,
                None if seed is None else str(seed),
            )
        return (
            response.content,
            response.headers.get("finish-reason", ""),
            response.headers.get("seed"),
        )


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
