"""AUTOMATIC1111 / SD WebUI: ``POST {base}/sdapi/v1/txt2img`` (the WebUI started with ``--api``).

JSON in (prompt, negative_prompt, seed, steps, cfg_scale, width, height, batch_size), base64
PNGs out; the seeds actually used are inside ``info``, itself a JSON *string*. A batch may come
back with a grid image first, which is dropped. Self-hosted, so cost is the catalog's notional
price per image.

The WebUI silently ignores an ``sd_model_checkpoint`` it does not know and renders with whatever
checkpoint is loaded, so the answer's ``info.sd_model_name`` / ``info.sd_model_hash`` are
compared with the requested checkpoint; a mismatch is a terminal error naming both (the images
are never recorded under the wrong model; the call is billed, it ran).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

import httpx
from pydantic import SecretStr

from brandloop.domain import ModelSpec
from brandloop.policies.catalog import image_price
from brandloop.providers import GeneratedImage, ImageRequest, ImageResult
from brandloop.settings import url_credentials
from brandloop.tools.providers._http import (
    decode_b64,
    inspect_image,
    json_body,
    raise_for_status,
    reading_answer,
    send,
)
from brandloop.tools.providers.errors import MalformedResponseError, TerminalProviderError
from brandloop.tools.providers.urls import join_url

DEFAULTS: dict[str, Any] = {"steps": 30, "cfg_scale": 7.0}
_RESERVED = frozenset(
    {"prompt", "negative_prompt", "seed", "width", "height", "batch_size", "n_iter"}
)
_TITLE = re.compile(r"^(?P<name>.*?)\s*\[(?P<hash>[0-9a-fA-F]{8,64})\]$")
_HEX = re.compile(r"^[0-9a-fA-F]{8,64}$")
_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".bin")


def same_checkpoint(requested: str, used_name: str | None, used_hash: str | None) -> bool:
    """Whether the checkpoint the WebUI used is the requested one. The request may name it as
    the WebUI's title (``name [hash]``), a file name (with or without folder and extension) or
    a hash; ``info`` reports the name without extension and the short hash."""
    wanted = requested.strip()
    name, digest = wanted, ""
    titled = _TITLE.fullmatch(wanted)
    if titled:
        name, digest = titled["name"], titled["hash"]
    elif _HEX.fullmatch(wanted):
        name, digest = "", wanted
    short = (used_hash or "").lower()
    if digest and short:
        return digest.lower().startswith(short) or short.startswith(digest.lower())
    stem = PurePosixPath(name.replace("\\", "/")).name
    for extension in _EXTENSIONS:
        stem = stem.removesuffix(extension)
    return bool(stem) and stem == (used_name or "")


class A1111Provider:
    """``ImageProvider`` over the AUTOMATIC1111 WebUI API."""

    name = "a1111"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        auth: SecretStr | str | None = None,
        models: Sequence[ModelSpec] = (),
    ) -> None:
        self._client = client
        self.base_url = base_url.rstrip("/")
        self._auth = auth if isinstance(auth, SecretStr) or auth is None else SecretStr(auth)
        self._specs = {m.model: m for m in models if m.provider == self.name}

    def body(self, request: ImageRequest) -> dict[str, Any]:
        """The JSON body for ``request`` (public so tests can check the wire format)."""
        body: dict[str, Any] = {
            **DEFAULTS,
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "seed": -1 if request.seed is None else request.seed,
            "width": request.width,
            "height": request.height,
            "batch_size": request.count,
            "n_iter": 1,
            "do_not_save_samples": True,
            "do_not_save_grid": True,
        }
        if request.model and request.model != "default":
            body["override_settings"] = {"sd_model_checkpoint": request.model}
            body["override_settings_restore_afterwards"] = False
        body.update({k: v for k, v in request.params.items() if k not in _RESERVED})
        return body

    def _headers(self) -> tuple[dict[str, str], list[str]]:
        """The headers to send, and what to take out of an error: the basic auth (as typed
        and as sent) and whatever credential the base URL holds."""
        in_url = url_credentials(self.base_url)
        if self._auth is None:
            return {}, in_url
        secret = self._auth.get_secret_value()
        token = base64.b64encode(secret.encode()).decode()
        return {"Authorization": f"Basic {token}"}, [secret, token, *in_url]

    async def generate(self, request: ImageRequest) -> ImageResult:
        headers, secrets = self._headers()
        if request.idempotency_key:
            headers["Idempotency-Key"] = request.idempotency_key
        response = await send(
            self._client,
            "POST",
            join_url(self.base_url, "/sdapi/v1/txt2img"),
            provider=self.name,
            json=self.body(request),
            headers=headers,
        )
        raise_for_status(response, provider=self.name, secrets=secrets)
        with reading_answer(self.name):
            return self._result(request, response)

    def _result(self, request: ImageRequest, response: httpx.Response) -> ImageResult:
        body = json_body(response, provider=self.name)
        encoded = body.get("images")
        if not isinstance(encoded, list) or not encoded:
            raise MalformedResponseError("a1111 answered no images", provider=self.name)
        if len(encoded) == request.count + 1:  # the grid comes first
            encoded = encoded[1:]
        info = self._info(body.get("info"))
        spec = self._specs.get(request.model)
        price = image_price(spec, width=request.width, height=request.height) if spec else 0.0
        self._check_checkpoint(request, info, charged=round(price * len(encoded), 6))
        seeds = self._seeds(info, request, len(encoded))
        images = []
        for item, seed in zip(encoded, seeds, strict=True):
            raw = decode_b64(item, provider=self.name)
            fmt, width, height = inspect_image(raw, provider=self.name)
            images.append(
                GeneratedImage(data=raw, format=fmt, width=width, height=height, seed=seed)
            )
        return ImageResult(
            images=images,
            seed=seeds[0],
            provider_request_id=None,
            usage={"images": len(images), "steps": body.get("parameters", {}).get("steps")}
            if isinstance(body.get("parameters"), dict)
            else {"images": len(images)},
            cost_usd=round(price * len(images), 6),
            finish_reason="success",
        )

    def _info(self, info: object) -> dict[str, Any]:
        """``info`` as an object (the WebUI sends it as a JSON string)."""
        if isinstance(info, dict):
            return info
        if isinstance(info, str):
            try:
                parsed = json.loads(info)
            except ValueError as exc:
                raise MalformedResponseError(
                    "a1111 answered an info field that is not JSON", provider=self.name
                ) from exc
            return parsed if isinstance(parsed, dict) else {}
        return {}

    def _check_checkpoint(
        self, request: ImageRequest, info: dict[str, Any], charged: float
    ) -> None:
        if not request.model or request.model == "default":
            return
        used_name, used_hash = info.get("sd_model_name"), info.get("sd_model_hash")
        if not isinstance(used_name, str | None) or not isinstance(used_hash, str | None):
            used_name, used_hash = None, None
        if same_checkpoint(request.model, used_name, used_hash):
            return
        used = f"{used_name or 'an unnamed checkpoint'} [{used_hash or 'no hash'}]"
        raise TerminalProviderError(
            f"a1111 made the images with checkpoint {used}, not the requested "
            f"{request.model!r} (the WebUI ignores a checkpoint it does not know): "
            "load the requested checkpoint or fix the catalog's model name",
            provider=self.name,
            billing="billed",
            charged_usd=charged,
        )

    def _seeds(self, info: dict[str, Any], request: ImageRequest, count: int) -> list[int | None]:
        """The seeds from ``info``; the requested ones if it has none."""
        seeds = info.get("all_seeds")
        if isinstance(seeds, list) and len(seeds) >= count:
            return [int(s) if isinstance(s, int) else None for s in seeds[:count]]
        if isinstance(info.get("seed"), int):
            return [info["seed"] + i for i in range(count)]
        if request.seed is not None:
            return [request.seed + i for i in range(count)]
        return [None] * count
