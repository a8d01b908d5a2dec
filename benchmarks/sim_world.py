"""A simulated world of OpenAI-compatible image backends whose qualities nobody can read.

Each world (a seed) draws, per model and quality setting, hidden rates of the three defects
a real backend has: an off-palette accent (palette miss), blur (soft) and a bad exposure. The
agent and the hand-written loops only see prices and the vendors' claims (the catalog's
``quality_baseline``, fixed across worlds and so wrong in most of them).

What may change an outcome is limited to generic prompt features, never a phrase:

* colours named in the prompt are drawn (the procedural renderer honours colours and nothing
  else), so colour words outside the brand palette cost palette adherence;
* an ``Avoid:`` clause (how brandloop folds a negative prompt for backends without one) keeps
  its colours out, obeyed with a hidden per-model probability;
* explicit ``#rrggbb`` codes lower the accent rate by a hidden per-model factor;
* prompt length: colours named after a hidden per-model attention span are not drawn;
* the quality setting changes the blur rate (by a hidden factor) and the price.

A backend speaks the OpenAI Images wire format through ``httpx.MockTransport`` and keeps its own
ledger: every dollar a method is charged comes from there. Draws are common random numbers: the
k-th identical request a method sends to a model gets the same image in every method, so two
methods that send the same prompts see the same luck. A repeated ``Idempotency-Key`` is answered
from the ledger and not charged again.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from PIL import Image, ImageFilter

from brandloop.domain import ModelSpec
from brandloop.tools.providers.colours import extract_colours
from brandloop.tools.providers.procedural import render_preview

QUALITIES = ("low", "medium", "high")
#: Public: provider, model, tier, the vendor's claimed quality, price by quality setting.
CATALOG: dict[str, tuple[str, str, str, float, dict[str, float]]] = {
    "openai/img-mini": (
        "openai", "img-mini", "draft", 0.75, {"low": 0.005, "medium": 0.011, "high": 0.036}
    ),
    "vendorb/img-std": (
        "vendorb", "img-std", "standard", 0.80, {"low": 0.010, "medium": 0.025, "high": 0.060}
    ),
    "openai/img-full": (
        "openai", "img-full", "premium", 0.85, {"low": 0.011, "medium": 0.042, "high": 0.167}
    ),
}  # fmt: skip
_HEX = re.compile(r"#[0-9a-fA-F]{6}\b")
_AVOID = "\nAvoid:"


def _unit(*parts: object) -> float:
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Hidden:
    """One model's hidden behaviour in one world."""

    accent: float  # chance of an off-palette accent
    blur: dict[str, float]  # chance of a soft image, by quality setting
    exposure: float  # chance of a badly exposed image
    hex_help: float  # accent chance multiplier when the prompt names #rrggbb codes
    obey_negative: float  # chance an Avoid: clause is honoured
    attention: int  # characters of prompt the model reads colours from


def draw_world(seed: int) -> dict[str, Hidden]:
    """The hidden qualities of every model in world ``seed``."""
    rng = random.Random(f"world:{seed}")
    world: dict[str, Hidden] = {}
    for model_id in CATALOG:
        blur = rng.uniform(0.05, 0.6)
        world[model_id] = Hidden(
            accent=rng.uniform(0.05, 0.6),
            blur={
                "low": min(0.95, blur * rng.uniform(1.3, 2.0)),
                "medium": blur,
                "high": blur * rng.uniform(0.1, 0.9),
            },
            exposure=rng.uniform(0.0, 0.3),
            hex_help=rng.uniform(0.3, 1.0),
            obey_negative=rng.uniform(0.5, 1.0),
            attention=rng.randint(150, 450),
        )
    return world


def specs() -> list[ModelSpec]:
    """The catalog entries the agent plans with: prices and claims only."""
    return [
        ModelSpec(
            id=model_id,
            provider=provider,
            model=model,
            tier=tier,  # type: ignore[arg-type]
            price_per_image_usd=prices["medium"],
            prices=dict(prices),
            qualities=list(QUALITIES),
            default_quality="medium",
            quality_baseline=claim,
            supports_seed=False,
            supports_negative_prompt=False,
            max_images_per_call=4,
        )
        for model_id, (provider, model, tier, claim, prices) in CATALOG.items()
    ]


def price(model_id: str, quality: str | None) -> float:
    return CATALOG[model_id][4][quality or "medium"]


@dataclass
class Ledger:
    """What one method was charged, call by call."""

    dollars: float = 0.0
    images: Counter[str] = field(default_factory=Counter)
    by_key: dict[str, bytes] = field(default_factory=dict)


class World:
    """One world's backends. ``session()`` gives a method its own ledger and draw counters."""

    def __init__(self, seed: int, *, size: int = 256) -> None:
        self.seed = seed
        self.hidden = draw_world(seed)
        self.size = size
        self._renders: dict[str, bytes] = {}

    def image(self, model_id: str, quality: str, prompt: str, occurrence: int) -> bytes:
        """The ``occurrence``-th image this exact prompt gets from this model and quality."""
        key = json.dumps([model_id, quality, prompt, occurrence])
        if key not in self._renders:
            self._renders[key] = self._make(model_id, quality, prompt, occurrence)
        return self._renders[key]

    def _make(self, model_id: str, quality: str, prompt: str, occurrence: int) -> bytes:
        hidden = self.hidden[model_id]
        draw = [_unit(self.seed, model_id, quality, prompt, occurrence, i) for i in range(6)]
        positive, _, avoid = prompt.partition(_AVOID)
        seen = positive[: hidden.attention]
        negative = avoid if draw[0] < hidden.obey_negative else ""
        accent = hidden.accent * (hidden.hex_help if _HEX.search(seen) else 1.0)
        if not extract_colours(seen):
            accent = max(accent, 0.5)  # nothing to follow: the model picks its own colours
        data = render_preview(
            prompt=seen,
            negative_prompt=negative,
            seed=int(draw[1] * 2**31),
            width=self.size,
            height=self.size,
            model="studio",
            accent_chance=accent,
        )
        soft = draw[2] < hidden.blur[quality]
        badly_exposed = draw[3] < hidden.exposure
        if not (soft or badly_exposed):
            return data
        with Image.open(io.BytesIO(data)) as source:
            image = source.convert("RGB")
        if soft:
            image = image.filter(ImageFilter.GaussianBlur(radius=1.5 + 2 * draw[4]))
        if badly_exposed:
            pixels = np.asarray(image, dtype=np.float32)
            pixels = pixels * 0.15 if draw[5] < 0.5 else 255 - (255 - pixels) * 0.12
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        out = io.BytesIO()
        image.save(out, format="PNG", compress_level=1)
        return out.getvalue()

    def session(self) -> WorldSession:
        return WorldSession(self)


class WorldSession:
    """One method's view of the world: its ledger and how often it sent each prompt."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.ledger = Ledger()
        self._sent: Counter[tuple[str, str, str]] = Counter()

    def generate(self, model_id: str, quality: str | None, prompt: str, n: int) -> list[bytes]:
        """Charge and make ``n`` images (the next ``n`` occurrences of this request)."""
        q = quality or "medium"
        images = []
        for _ in range(n):
            occurrence = self._sent[(model_id, q, prompt)]
            self._sent[(model_id, q, prompt)] += 1
            images.append(self.world.image(model_id, q, prompt, occurrence))
        self.ledger.dollars += price(model_id, q) * n
        self.ledger.images[model_id] += n
        return images

    def transport(self, provider: str) -> httpx.MockTransport:
        """The OpenAI Images wire format for ``provider``'s models, over this session."""

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path.rstrip("/") != "/v1/images/generations":
                return httpx.Response(404, json={"error": {"message": "not found"}})
            key = request.headers.get("Idempotency-Key", "")
            if key and key in self.ledger.by_key:
                return httpx.Response(
                    200, content=self.ledger.by_key[key], headers={"x-request-id": key}
                )
            body: dict[str, Any] = json.loads(request.content)
            model_id = f"{provider}/{body['model']}"
            if model_id not in CATALOG:
                return httpx.Response(
                    400, json={"error": {"message": f"unknown model {body['model']}"}}
                )
            images = self.generate(model_id, body.get("quality"), body["prompt"], body["n"])
            content = json.dumps(
                {"data": [{"b64_json": base64.b64encode(png).decode()} for png in images]}
            ).encode()
            if key:
                self.ledger.by_key[key] = content
            return httpx.Response(
                200, content=content, headers={"x-request-id": f"sim-{len(self.ledger.by_key)}"}
            )

        return httpx.MockTransport(handler)
