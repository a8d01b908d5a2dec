"""Contrast, colourfulness and format match: cheap global signals beside palette and sharpness.

Each returns a :class:`~brandloop.domain.Signal` whose explanation names its numbers.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from brandloop.domain import Signal
from brandloop.policies.scoring import ColourfulnessPolicy, ContrastPolicy, FormatPolicy


def _ramp(x: float, start: float, end: float) -> float:
    """0 below ``start``, 1 above ``end``, linear between."""
    return min(max((x - start) / (end - start), 0.0), 1.0)


def contrast(gray: npt.NDArray[np.uint8], policy: ContrastPolicy) -> Signal:
    """Tonal spread: the 2nd to 98th percentile of luminance, from a 256-bin histogram.

    ``raw`` is the spread in 8-bit levels; the RMS contrast (standard deviation) is named in
    the explanation too. A flat, washed-out or murky frame has a narrow spread.
    """
    if gray.size == 0:
        raise ValueError("cannot measure the contrast of an empty image")
    g = gray if gray.dtype == np.uint8 else np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    histogram = np.bincount(g.ravel(), minlength=256)
    cumulative = np.cumsum(histogram) / g.size
    low = int(np.searchsorted(cumulative, 0.02))
    high = int(np.searchsorted(cumulative, 0.98))
    spread = float(max(high - low, 0))
    levels = np.arange(256, dtype=np.float64)
    mean = float(histogram @ levels) / g.size
    rms = math.sqrt(max(float(histogram @ (levels - mean) ** 2) / g.size, 0.0))
    return Signal.judged(
        "contrast",
        _ramp(spread, policy.spread_zero, policy.spread_full),
        raw=spread,
        threshold=policy.threshold,
        explain=lambda passed: (
            f"luminance spans {low}..{high} (2nd-98th percentile, {spread:.0f} levels), "
            f"RMS contrast {rms:.0f}: {'good tonal range' if passed else 'flat, low contrast'}"
        ),
    )


#: Hasler and Süsstrunk's verbal scale for M, to say in words what the number means.
_COLOURFUL_WORDS = (
    (15.0, "not colourful"),
    (33.0, "slightly colourful"),
    (45.0, "moderately colourful"),
    (59.0, "averagely colourful"),
    (82.0, "quite colourful"),
    (math.inf, "highly colourful"),
)


def colourfulness_metric(rgb: npt.NDArray[np.uint8]) -> float:
    """Hasler and Süsstrunk (2003) M = σ_rgyb + 0.3 μ_rgyb on the opponent axes rg = R - G,
    yb = (R + G) / 2 - B, over 8-bit sRGB values."""
    pixels = rgb.reshape(-1, 3).astype(np.float32)
    r, g, b = pixels[:, 0], pixels[:, 1], pixels[:, 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = math.hypot(float(rg.std()), float(yb.std()))
    mu = math.hypot(float(rg.mean()), float(yb.mean()))
    return sigma + 0.3 * mu


def colourfulness(rgb: npt.NDArray[np.uint8], policy: ColourfulnessPolicy) -> Signal:
    """Colourfulness M (Hasler-Süsstrunk); ``value = min(M / m_full, 1)``, ``raw = M``."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise ValueError(f"expected a non-empty (H, W, 3) image, got shape {rgb.shape}")
    metric = colourfulness_metric(rgb)
    value = min(metric / policy.m_full, 1.0)
    words = next(word for limit, word in _COLOURFUL_WORDS if metric < limit)
    return Signal.judged(
        "colourfulness",
        value,
        raw=metric,
        threshold=policy.threshold,
        explain=lambda passed: (
            f"colourfulness M = {metric:.1f} ({words}; Hasler-Süsstrunk)"
            + ("" if passed else ": nearly grey")
        ),
    )


def format_match(
    width: int, height: int, *, wanted_width: int, wanted_height: int, policy: FormatPolicy
) -> Signal:
    """Size and aspect ratio against the request.

    Aspect: ``|ln(aspect / wanted)|`` costs nothing up to ``aspect_tolerance`` and zeroes the
    value at ``aspect_zero``. Size: an image smaller than asked scales the value by the
    shorter side's shortfall (a larger one costs nothing: it can be downscaled losslessly
    enough). ``raw`` is the aspect error.
    """
    if min(width, height, wanted_width, wanted_height) <= 0:
        raise ValueError("sizes must be positive")
    aspect_error = abs(math.log((width / height) / (wanted_width / wanted_height)))
    aspect_value = 1.0 - _ramp(aspect_error, policy.aspect_tolerance, policy.aspect_zero)
    scale = min(width / wanted_width, height / wanted_height, 1.0)
    value = aspect_value * scale
    if width == wanted_width and height == wanted_height:
        detail = "exactly the size asked for"
    else:
        detail = f"aspect {width / height:.3f} vs {wanted_width / wanted_height:.3f} wanted" + (
            f", {scale:.0%} of the asked resolution" if scale < 1 else ""
        )
    return Signal.judged(
        "format",
        value,
        raw=aspect_error,
        threshold=policy.threshold,
        explain=lambda _: f"{width}x{height} for {wanted_width}x{wanted_height} asked: {detail}",
    )
