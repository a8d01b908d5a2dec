"""Colour science for the palette signal: sRGB → CIELAB, CIEDE2000 and dominant colours.

Everything is vectorised over numpy arrays so the score node can compare thousands of pixels
with a brand palette in about a millisecond. Lab is CIE 1976 L*a*b* under D65, the white point
of sRGB, so brand hex codes and image pixels meet in the same space without adaptation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image

FloatArray = npt.NDArray[np.float64]

#: sRGB (linear) → XYZ, IEC 61966-2-1 primaries with a D65 white.
_RGB_TO_XYZ: Final = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
#: Row sums are the D65 white (0.95047, 1.0, 1.08883), so #ffffff maps to exactly a* = b* = 0.
_RGB_TO_XYZ_N: Final = _RGB_TO_XYZ / _RGB_TO_XYZ.sum(axis=1, keepdims=True)
_EPSILON: Final = 216.0 / 24389.0
_KAPPA: Final = 24389.0 / 27.0
_POW25_7: Final = 25.0**7


def _linearise(channel: FloatArray) -> FloatArray:
    return np.where(channel <= 0.04045, channel / 12.92, ((channel + 0.055) / 1.055) ** 2.4)


#: Linear-light value of every 8-bit code: uint8 input skips the power law entirely.
_LINEAR_LUT: Final = _linearise(np.arange(256, dtype=np.float64) / 255.0)


def srgb_to_lab(rgb: npt.ArrayLike) -> FloatArray:
    """Convert sRGB values in 0..255 (shape ``(..., 3)``) to CIELAB (D65), same leading shape.

    uint8 arrays go through a lookup table; other dtypes are treated as continuous 0..255.
    """
    array = np.asarray(rgb)
    if array.shape[-1:] != (3,):
        raise ValueError(f"expected a trailing axis of 3 channels, got shape {array.shape}")
    if array.dtype == np.uint8:
        linear = _LINEAR_LUT[array]
    else:
        linear = _linearise(np.clip(array.astype(np.float64), 0.0, 255.0) / 255.0)
    xyz = linear @ _RGB_TO_XYZ_N.T
    f = np.where(xyz > _EPSILON, np.cbrt(xyz), (_KAPPA * xyz + 16.0) / 116.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return np.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), axis=-1)


def hex_to_lab(hex_colour: str) -> FloatArray:
    """CIELAB of a ``#rrggbb`` code, shape ``(3,)``."""
    value = hex_colour.lstrip("#")
    if len(value) != 6:
        raise ValueError(f"{hex_colour!r} is not a #rrggbb colour")
    rgb = np.array([int(value[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.uint8)
    return srgb_to_lab(rgb)


def lab_to_hex(lab: npt.ArrayLike) -> str:
    """The ``#rrggbb`` code nearest a CIELAB colour, for explanations people can read."""
    lab_arr = np.asarray(lab, dtype=np.float64)
    fy = (lab_arr[0] + 16.0) / 116.0
    f = np.array([fy + lab_arr[1] / 500.0, fy, fy - lab_arr[2] / 200.0])
    xyz = np.where(f**3 > _EPSILON, f**3, (116.0 * f - 16.0) / _KAPPA)
    linear = np.clip(np.linalg.solve(_RGB_TO_XYZ_N, xyz), 0.0, 1.0)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    r, g, b = (round(float(c) * 255.0) for c in np.clip(srgb, 0.0, 1.0))
    return f"#{r:02x}{g:02x}{b:02x}"


def delta_e_2000(lab1: npt.ArrayLike, lab2: npt.ArrayLike) -> FloatArray:
    """CIEDE2000 colour difference (kL = kC = kH = 1) between broadcastable ``(..., 3)`` arrays.

    Follows Sharma, Wu and Dalal (2005), including the hue-mean and hue-difference cases for
    achromatic colours, so it agrees with their published test data to four decimals.
    """
    a_lab, b_lab = np.broadcast_arrays(
        np.asarray(lab1, dtype=np.float64), np.asarray(lab2, dtype=np.float64)
    )
    l1, a1, b1 = a_lab[..., 0], a_lab[..., 1], a_lab[..., 2]
    l2, a2, b2 = b_lab[..., 0], b_lab[..., 1], b_lab[..., 2]

    c_bar7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2.0) ** 7
    g = 0.5 * (1.0 - np.sqrt(c_bar7 / (c_bar7 + _POW25_7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360.0
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360.0
    chroma_product = c1p * c2p
    achromatic = chroma_product == 0.0

    dl = l2 - l1
    dc = c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh))
    dh = np.where(achromatic, 0.0, dh)
    dh_big = 2.0 * np.sqrt(chroma_product) * np.sin(np.radians(dh / 2.0))

    l_bar = (l1 + l2) / 2.0
    c_bar_p = (c1p + c2p) / 2.0
    h_sum = h1p + h2p
    h_bar = np.where(
        achromatic,
        h_sum,
        np.where(
            np.abs(h1p - h2p) <= 180.0,
            h_sum / 2.0,
            np.where(h_sum < 360.0, (h_sum + 360.0) / 2.0, (h_sum - 360.0) / 2.0),
        ),
    )
    t = (
        1.0
        - 0.17 * np.cos(np.radians(h_bar - 30.0))
        + 0.24 * np.cos(np.radians(2.0 * h_bar))
        + 0.32 * np.cos(np.radians(3.0 * h_bar + 6.0))
        - 0.20 * np.cos(np.radians(4.0 * h_bar - 63.0))
    )
    d_theta = 30.0 * np.exp(-(((h_bar - 275.0) / 25.0) ** 2))
    c_bar_p7 = c_bar_p**7
    r_c = 2.0 * np.sqrt(c_bar_p7 / (c_bar_p7 + _POW25_7))
    l_term = (l_bar - 50.0) ** 2
    s_l = 1.0 + 0.015 * l_term / np.sqrt(20.0 + l_term)
    s_c = 1.0 + 0.045 * c_bar_p
    s_h = 1.0 + 0.015 * c_bar_p * t
    r_t = -np.sin(np.radians(2.0 * d_theta)) * r_c

    dl_s, dc_s, dh_s = dl / s_l, dc / s_c, dh_big / s_h
    result: FloatArray = np.sqrt(np.maximum(dl_s**2 + dc_s**2 + dh_s**2 + r_t * dc_s * dh_s, 0.0))
    return result


def downsample(rgb: npt.NDArray[np.uint8], side: int = 64) -> npt.NDArray[np.uint8]:
    """Area-average an ``(H, W, 3)`` uint8 image to ``side × side`` (smaller images pass as is).

    Squashing the aspect ratio is deliberate: every output pixel stands for the same share of
    the picture, so pixel counts remain coverage. Lab on 64² costs ~1 ms, on 1024² ~57 ms.
    """
    height, width = rgb.shape[:2]
    if height <= side and width <= side:
        return rgb
    pixels = rgb if rgb.dtype == np.uint8 else np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(pixels))
    small = image.resize((min(side, width), min(side, height)), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.uint8)


def _squared_distances(points: FloatArray, centres: FloatArray) -> FloatArray:
    """``(n, k)`` squared Euclidean distances, by expansion: ~4× faster than broadcasting."""
    cross = points @ centres.T
    result: FloatArray = (points**2).sum(axis=1)[:, None] - 2.0 * cross + (centres**2).sum(axis=1)
    return result


def _kmeans_pp_init(points: FloatArray, k: int, rng: np.random.Generator) -> FloatArray:
    """k-means++ seeding; stops early when every point already sits on a centre."""
    centres = [points[int(rng.integers(len(points)))]]
    nearest = ((points - centres[0]) ** 2).sum(axis=1)
    while len(centres) < k:
        total = float(nearest.sum())
        if total <= 1e-12:
            break
        choice = int(rng.choice(len(points), p=nearest / total))
        centres.append(points[choice])
        nearest = np.minimum(nearest, ((points - points[choice]) ** 2).sum(axis=1))
    return np.array(centres)


def dominant_colours(
    rgb: npt.NDArray[np.uint8], k: int = 5, *, iterations: int = 10, side: int = 64
) -> list[tuple[FloatArray, float]]:
    """The image's main colours as ``(lab, coverage)`` pairs, largest coverage first.

    Deterministic: k-means in Lab (Euclidean, i.e. ΔE76, which is what clustering needs) seeded
    by k-means++ from a fixed generator on a ``side × side`` downsample. Coverages sum to 1.
    Fewer than ``k`` pairs come back when the image has fewer distinct colours.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise ValueError(f"expected a non-empty (H, W, 3) image, got shape {rgb.shape}")
    points = srgb_to_lab(downsample(rgb, side)).reshape(-1, 3)
    centres = _kmeans_pp_init(points, k, np.random.default_rng(0))
    n = len(centres)
    labels = np.zeros(len(points), dtype=np.intp)
    for _ in range(iterations):
        labels = _squared_distances(points, centres).argmin(axis=1)
        members = np.bincount(labels, minlength=n).astype(np.float64)
        sums = np.stack([np.bincount(labels, points[:, c], minlength=n) for c in range(3)], 1)
        updated = np.where(members[:, None] > 0, sums / np.maximum(members, 1.0)[:, None], centres)
        if np.allclose(updated, centres, atol=1e-6):
            centres = updated
            break
        centres = updated
    labels = _squared_distances(points, centres).argmin(axis=1)
    counts = np.bincount(labels, minlength=n)
    order = np.argsort(-counts, kind="stable")
    total = float(len(points))
    return [(centres[i].copy(), float(counts[i]) / total) for i in order if counts[i] > 0]


def nearest_delta_e(rgb: tuple[int, int, int], hexes: Sequence[str]) -> float:
    """ΔE2000 from an sRGB colour to the nearest of ``hexes`` (inf when there are none)."""
    if not hexes:
        return float("inf")
    lab = srgb_to_lab(np.array(rgb, dtype=np.uint8))
    targets = np.stack([hex_to_lab(h) for h in hexes])
    return float(delta_e_2000(lab[None, :], targets).min())
