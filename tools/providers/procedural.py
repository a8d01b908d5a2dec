"""The embedded ``procedural`` provider: a preview renderer for offline use, not a generative model.

It draws abstract compositions (a gradient, circles, rectangles, stripes, soft blobs, grain)
from the colours named in the prompt and the seed, so the agent loop, scoring and provenance
can run end to end with no network and no model weights. It honours colours named in the
prompt (hex codes and colour words) and nothing else: no phrase is special, so no repair the
agent emits can game it (``tests/tools/test_procedural.py`` renders every string literal of the
composer and the diagnosis and checks that none changes a pixel). What it guarantees:

* the image depends only on (colours named in the prompt in order, colours named in the
  negative prompt, seed, width, height, model): identical inputs give byte-identical PNGs, and
  the composition depends only on (colours, negative colours, seed), so a ``draft`` preview and
  its ``studio`` re-render show the same layout;
* the earlier a colour is named the more area it gets; colours named in the negative prompt
  are left out;
* like a real model, it sometimes (p ≈ 0.35 per seed; ``accent_chance``, the setting
  ``procedural_accent_chance``) adds an off-palette accent over 20-32 % of the frame; no
  wording prevents it, only another seed (or naming the accent's colour in the negative
  prompt, which picks another accent colour);
* ``draft`` is rendered at a quarter of the size and upscaled, so it is measurably softer.
"""

from __future__ import annotations

import asyncio
import colorsys
import hashlib
import io
import json
import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from brandloop.providers import GeneratedImage, ImageRequest, ImageResult
from brandloop.tools.providers.colours import RGB, colour_distance, extract_colours
from brandloop.tools.providers.errors import TerminalProviderError

Model = Literal["draft", "studio"]
F32 = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]

MODELS: Final[tuple[Model, ...]] = ("draft", "studio")
DEFAULT_PRICES: Final[dict[str, float]] = {"draft": 0.01, "studio": 0.04}
SOFTWARE: Final = "brandloop procedural preview renderer"
MIN_SIDE: Final = 16  # below the domain minimum so unit tests can render tiny images
MAX_SIDE: Final = 4096
DRAFT_SCALE: Final = 4

NEGATIVE_RADIUS: Final = 60.0  # a prompt colour this close to a negative one is dropped
WEIGHT_RATIO: Final = 0.5  # each named colour gets this share of the previous one's area
MAX_COLOURS: Final = 6  # later colours would get under 1 % of the frame anyway
ACCENT_CHANCE: Final = 0.35
ACCENT_SHARE: Final = (0.20, 0.32)  # below the first colour's minimum share, so it stays first
ACCENT_MIN_DISTANCE: Final = 120.0  # an accent must be visibly foreign to the palette
ACCENT_COLOURS: Final[tuple[RGB, ...]] = (
    (255, 0, 200),
    (120, 230, 0),
    (255, 120, 0),
    (0, 190, 255),
    (150, 0, 230),
    (255, 220, 0),
    (0, 200, 140),
    (230, 0, 40),
)
SHAPES: Final = (5, 8, 0.06, 0.22)  # shape count range, radius range (short-side units)
BLOBS: Final = 2
GRAIN: Final = 7.0  # studio grain amplitude in 8-bit levels: the "fine detail"
BLEND_WIDTH: Final = 0.05  # width of the soft first/second colour transition, in field units


@dataclass(frozen=True)
class Brief:
    """What the renderer takes from a prompt: its colours. Everything else is ignored."""

    palette: list[RGB]
    negatives: list[RGB]


def read_brief(prompt: str, negative_prompt: str = "") -> Brief:
    """The colours named in a prompt (in order, minus those near a negative one) and in its
    negative prompt. Nothing else in either text reaches the pixels."""
    negatives = [rgb for rgb, _ in extract_colours(negative_prompt)]
    palette = [rgb for rgb, _ in extract_colours(prompt) if _far(rgb, negatives, NEGATIVE_RADIUS)][
        :MAX_COLOURS
    ]
    return Brief(palette, negatives)


def render_preview(
    *,
    prompt: str,
    negative_prompt: str,
    seed: int,
    width: int,
    height: int,
    model: str,
    accent_chance: float = ACCENT_CHANCE,
) -> bytes:
    """Render one PNG; synchronous and CPU-bound, so async callers run it in a thread.

    ``accent_chance`` is how often a seed gets an off-palette accent; a simulated backend
    (``benchmarks/sim_world.py``) sets its own rate, the provider keeps the default.
    """
    _check(model, width, height)
    brief = read_brief(prompt, negative_prompt)
    # Keyed by the colours read, never by the text: a phrase without a colour changes nothing.
    layout_key = _digest(brief.palette, brief.negatives, seed)
    texture_key = _digest(brief.palette, brief.negatives, seed, width, height, model)
    w, h = width, height
    if model == "draft":
        w, h = math.ceil(width / DRAFT_SCALE), math.ceil(height / DRAFT_SCALE)
    image = Image.fromarray(_paint(brief, layout_key, texture_key, w, h, accent_chance))
    if (w, h) != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    info = PngInfo()
    info.add_text("Software", SOFTWARE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1, pnginfo=info)
    return buffer.getvalue()


class ProceduralProvider:
    """``ImageProvider`` over :func:`render_preview`; costs are notional, for budget tests."""

    name = "procedural"

    def __init__(
        self, *, prices: dict[str, float] | None = None, accent_chance: float = ACCENT_CHANCE
    ) -> None:
        unknown = set(prices or {}) - set(MODELS)
        if unknown:
            raise ValueError(f"prices for unknown procedural models: {sorted(unknown)}")
        if not 0.0 <= accent_chance <= 1.0:
            raise ValueError(f"accent_chance must be within [0, 1], not {accent_chance}")
        self.prices = {**DEFAULT_PRICES, **(prices or {})}
        self.accent_chance = accent_chance

    async def generate(self, request: ImageRequest) -> ImageResult:
        _check(request.model, request.width, request.height)  # fail before taking a thread
        first = request.seed
        if first is None:  # reproducible even when the caller did not pick a seed
            brief = read_brief(request.prompt, request.negative_prompt)
            first = int.from_bytes(_digest(brief.palette, brief.negatives)[:4], "big")
        seeds = [first + i for i in range(request.count)]
        pngs = await asyncio.to_thread(self._render_all, request, seeds)
        request_key = _digest(
            request.prompt,
            request.negative_prompt,
            first,
            request.width,
            request.height,
            request.model,
            request.count,
        )
        return ImageResult(
            images=[
                GeneratedImage(
                    data=png, format="png", width=request.width, height=request.height, seed=s
                )
                for png, s in zip(pngs, seeds, strict=True)
            ],
            seed=first,
            provider_request_id="proc-" + request_key.hex()[:16],
            usage={"images": len(pngs), "model": request.model},
            cost_usd=self.prices[request.model] * len(pngs),
            finish_reason="success",
        )

    def _render_all(self, request: ImageRequest, seeds: list[int]) -> list[bytes]:
        return [
            render_preview(
                prompt=request.prompt,
                negative_prompt=request.negative_prompt,
                seed=s,
                width=request.width,
                height=request.height,
                model=request.model,
                accent_chance=self.accent_chance,
            )
            for s in seeds
        ]


# --------------------------------------------------------------------------- painting


def _check(model: str, width: int, height: int) -> None:
    """Refuse what no retry could fix: the agent should fall back, not try again."""
    if model not in MODELS:
        raise TerminalProviderError(
            f"procedural has no model {model!r}; choose one of {', '.join(MODELS)}"
        )
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise TerminalProviderError(
            f"size {width}x{height} is impossible: each side must be {MIN_SIDE}..{MAX_SIDE}"
        )


def _digest(*parts: object) -> bytes:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).digest()


def _rng(key: bytes) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(key, "big"))


def _paint(
    brief: Brief, layout_key: bytes, texture_key: bytes, w: int, h: int, accent_chance: float
) -> npt.NDArray[np.uint8]:
    """Compose at ``w``×``h``: label regions by area share, then colour, shade, grain, expose."""
    palette_rng, layout_rng, accent_rng = (
        np.random.default_rng(child)
        for child in np.random.SeedSequence(int.from_bytes(layout_key, "big")).spawn(3)
    )
    palette = _pad(brief.palette or _seeded_palette(palette_rng, brief.negatives))
    side = min(w, h)  # coordinates in short-side units keep the layout resolution-independent
    xs = ((np.arange(w, dtype=np.float32) + 0.5) / side).astype(np.float32)
    ys = ((np.arange(h, dtype=np.float32) + 0.5) / side).astype(np.float32)
    field, covered, shade, lowfreq = _compose(layout_rng, xs, ys)
    accent = _accent(accent_rng, xs, ys, palette, brief, accent_chance)

    stride = max(1, side // 256)  # quantiles from a subsample: same answer, far cheaper
    labels, first_cut = _label(field, len(palette), accent[1] if accent else None, stride)
    colours = np.array(palette + ([accent[0]] if accent else []), dtype=np.float32)
    image: F32 = np.take(colours, labels, axis=0)

    # the background gradient: a soft transition between the first two colours
    band = ~covered & (labels <= 1) & (np.abs(field - first_cut) < BLEND_WIDTH / 2)
    t = np.clip((field[band] - first_cut) / BLEND_WIDTH + 0.5, 0, 1)[:, None]
    image[band] = colours[0] + t * (colours[1] - colours[0])

    shade += np.float32(0.05) * lowfreq  # soft lighting; shapes carry their own shade
    grain = _rng(texture_key).random((h, w), dtype=np.float32)
    offset = np.maximum(shade, 0) * np.float32(255) + (grain - 0.5) * np.float32(2 * GRAIN)
    image *= (1 - np.abs(shade))[..., None]
    image += offset[..., None]
    np.clip(image, 0, 255, out=image)
    return image.astype(np.uint8)


def _label(
    field: F32, n_colours: int, accent: Mask | None, stride: int
) -> tuple[npt.NDArray[np.uint8], float]:
    """Colour index per pixel: field quantiles cut so colour k covers a share ∝ ratio**k.

    The accent, if any, takes index ``n_colours`` and the palette shares the rest. Returns the
    labels and the cut between the first two colours, where the gradient is drawn.
    """
    sample = field[::stride, ::stride]
    if accent is not None:
        sample = sample[~accent[::stride, ::stride]]
    weights = np.array([WEIGHT_RATIO**k for k in range(n_colours)], dtype=np.float64)
    cuts = np.quantile(sample, np.cumsum(weights / weights.sum())[:-1])
    labels = np.zeros(field.shape, dtype=np.uint8)
    for cut in cuts:
        labels += field > cut
    if accent is not None:
        labels[accent] = n_colours
    return labels, float(cuts[0])


def _pad(palette: list[RGB]) -> list[RGB]:
    """A lone colour gets a lighter and a darker shade of itself, for a tonal gradient."""
    if len(palette) != 1:
        return palette
    (r, g, b) = colour = palette[0]
    lighter = (r + (255 - r) * 0.15, g + (255 - g) * 0.15, b + (255 - b) * 0.15)
    darker = (r * 0.85, g * 0.85, b * 0.85)
    return [colour, _rgb(*lighter), _rgb(*darker)]


def _rgb(r: float, g: float, b: float) -> RGB:
    return (round(r), round(g), round(b))


def _far(colour: RGB, others: list[RGB], radius: float) -> bool:
    return all(colour_distance(colour, other) > radius for other in others)


def _seeded_palette(rng: np.random.Generator, negatives: list[RGB]) -> list[RGB]:
    """Four harmonious colours from the seed, avoiding any the negative prompt names."""
    base = rng.random()
    scheme = [(0.0, 0.45, 0.9), (0.08, 0.6, 0.7), (0.5, 0.75, 0.85), (0.58, 0.35, 0.35)]
    jitter = rng.uniform(-0.1, 0.1, size=(len(scheme), 3))
    candidates: list[RGB] = []
    for (dh, sat, val), (jh, js, jv) in zip(scheme, jitter, strict=True):
        hue = (base + dh + 0.3 * jh) % 1.0
        rgb = colorsys.hsv_to_rgb(hue, min(1.0, sat + js), min(1.0, val + jv))
        candidates.append(_rgb(*(255 * c for c in rgb)))
    kept = [c for c in candidates if _far(c, negatives, NEGATIVE_RADIUS)]
    if kept:
        return kept
    return [max(candidates, key=lambda c: min(colour_distance(c, n) for n in negatives))]


def _compose(rng: np.random.Generator, xs: F32, ys: F32) -> tuple[F32, Mask, F32, F32]:
    """A scalar field whose quantiles become colour regions: ramp, noise, blobs, shapes.

    Shapes overwrite the field with one value, so after quantile labelling each shape is a
    crisp-edged region of one colour; ``covered`` marks them, ``shade`` holds their tint.
    """
    h, w = len(ys), len(xs)
    angle = rng.uniform(0, 2 * math.pi)
    ax = (xs - xs.mean()) * np.float32(math.cos(angle))
    ay = (ys - ys.mean()) * np.float32(math.sin(angle))
    span = float(ax.max() - ax.min() + ay.max() - ay.min()) or 1.0
    ax = (ax - ax.min()) / np.float32(span)
    ay = (ay - ay.min()) / np.float32(span)
    lowfreq = _smooth_noise(rng.standard_normal((5, 5)), xs, ys)
    field: F32 = ay[:, None] + ax[None, :] + np.float32(0.15) * lowfreq

    for cx, cy, size, amp in rng.random((BLOBS, 4)):
        field += np.float32((amp - 0.5) * 1.2) * _bump(xs, ys, cx, cy, 0.08 + 0.15 * size)

    covered = np.zeros((h, w), dtype=bool)
    shade = np.zeros((h, w), dtype=np.float32)
    low, high, r_min, r_max = SHAPES
    count = int(rng.integers(low, high + 1))
    for kind, cx, cy, s1, s2, value, tint, orient in rng.random((count, 8)):
        cx, cy = cx * float(xs[-1]), cy * float(ys[-1])
        a, b = r_min + (r_max - r_min) * s1, r_min + (r_max - r_min) * s2
        if kind < 0.4:
            box = _box(xs, ys, cx - a, cx + a, cy - a, cy + a)
            mask = (xs[box[1]] - cx)[None, :] ** 2 + (ys[box[0]] - cy)[:, None] ** 2 <= a * a
        elif kind < 0.75:
            box = _box(xs, ys, cx - a, cx + a, cy - b, cy + b)
            mask = np.ones(field[box].shape, dtype=bool)
        else:  # a band of stripes across the frame
            period = 0.03 + 0.07 * s2
            if orient < 0.5:
                box = _box(xs, ys, 0.0, float(xs[-1]) + 1, cy - a / 2, cy + a / 2)
                stripes = (np.floor((xs[box[1]] - cx) / period) % 2 == 0)[None, :]
            else:
                box = _box(xs, ys, cx - a / 2, cx + a / 2, 0.0, float(ys[-1]) + 1)
                stripes = (np.floor((ys[box[0]] - cy) / period) % 2 == 0)[:, None]
            mask = np.broadcast_to(stripes, field[box].shape)
        field[box][mask] = np.float32(value)
        covered[box][mask] = True
        shade[box][mask] = np.float32((tint - 0.5) * 0.2)
    return field, covered, shade, lowfreq


def _bump(xs: F32, ys: F32, fx: float, fy: float, sigma: float) -> F32:
    """A Gaussian bump centred at a fraction (fx, fy) of the frame, built as an outer product."""
    gx = np.exp(-((xs - fx * xs[-1]) ** 2) / (2 * sigma**2)).astype(np.float32)
    gy = np.exp(-((ys - fy * ys[-1]) ** 2) / (2 * sigma**2)).astype(np.float32)
    out: F32 = gy[:, None] * gx[None, :]
    return out


def _box(xs: F32, ys: F32, x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice]:
    """The (rows, columns) slice covering a rectangle given in short-side units."""
    cols = slice(int(np.searchsorted(xs, x0)), int(np.searchsorted(xs, x1, side="right")))
    rows = slice(int(np.searchsorted(ys, y0)), int(np.searchsorted(ys, y1, side="right")))
    return rows, cols


def _smooth_noise(grid: npt.NDArray[np.float64], xs: F32, ys: F32) -> F32:
    """Gaussian-interpolated random knots: large soft variations, the same at any resolution."""

    def weights(coords: F32, knots: int) -> F32:
        centres = np.linspace(0, float(coords[-1]), knots, dtype=np.float32)
        sigma = max(float(coords[-1]), 1e-6) / (knots - 1)
        wts: F32 = np.exp(-(((coords[:, None] - centres[None, :]) / np.float32(sigma)) ** 2))
        wts /= wts.sum(axis=1, keepdims=True)
        return wts

    rows, cols = weights(ys, grid.shape[0]), weights(xs, grid.shape[1])
    # einsum, not matmul: BLAS would wake its thread pool, which then spins on the other core
    per_row = np.einsum("ik,kl->il", rows, grid.astype(np.float32))
    out: F32 = np.einsum("il,jl->ij", per_row, cols)
    return out


def _accent(
    rng: np.random.Generator, xs: F32, ys: F32, palette: list[RGB], brief: Brief, chance: float
) -> tuple[RGB, Mask] | None:
    """Maybe an off-palette region, as a real model's palette misses (decided by the seed)."""
    roll, share_u = rng.random(2)
    order = rng.permutation(len(ACCENT_COLOURS))
    centres = rng.random((2, 3))
    if roll >= chance:
        return None
    colour = next(
        (
            ACCENT_COLOURS[i]
            for i in order
            if _far(ACCENT_COLOURS[i], palette, ACCENT_MIN_DISTANCE)
            and _far(ACCENT_COLOURS[i], brief.negatives, NEGATIVE_RADIUS)
        ),
        None,
    )
    if colour is None:
        return None
    field = np.zeros((len(ys), len(xs)), dtype=np.float32)
    for cx, cy, size in centres:
        field += _bump(xs, ys, cx, cy, 0.15 + 0.2 * size)
    share = ACCENT_SHARE[0] + (ACCENT_SHARE[1] - ACCENT_SHARE[0]) * share_u
    stride = max(1, min(len(xs), len(ys)) // 256)
    cut = np.quantile(field[::stride, ::stride], 1 - share)
    return colour, field > cut
