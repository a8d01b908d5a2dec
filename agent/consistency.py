"""How consistent a set of accepted images looks: palette spread and descriptor spread.

palette spread     each image becomes a distribution over the brand's colours (its dominant
                   colours' coverage assigned to the nearest brand colour, or to "off-brand"
                   when further than ``OFF_BRAND_DELTA_E``); the spread is the mean pairwise
                   total-variation distance of those distributions, in [0, 1].
descriptor spread  the mean ΔE2000 from each image's coverage-weighted mean colour (CIELAB) to
                   the set's mean: how far the images' overall colour cast wanders.
Lower is more consistent (0 = the images agree exactly). A spread needs two images: with fewer
both are None, "not measured" - never 0, which would read as perfectly consistent.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt
from PIL import Image

from brandloop.domain import BrandKit
from brandloop.tools.scoring.colour import delta_e_2000, dominant_colours, hex_to_lab

OFF_BRAND_DELTA_E = 20.0


@dataclass(frozen=True)
class Consistency:
    images: int
    palette_spread: float | None
    descriptor_spread: float | None


Vector = npt.NDArray[np.float64]


def palette_distribution(data: bytes, brand: BrandKit, k: int = 6) -> Vector:
    """Coverage per brand colour (in palette order) plus a last off-brand bucket; sums to 1."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    palette = np.stack([hex_to_lab(c.hex) for c in brand.palette])
    dist = np.zeros(len(brand.palette) + 1)
    for lab, coverage in dominant_colours(rgb, k):
        distances = delta_e_2000(lab[None, :], palette)
        nearest = int(distances.argmin())
        dist[nearest if distances[nearest] <= OFF_BRAND_DELTA_E else -1] += coverage
    normalised: Vector = dist / max(float(dist.sum()), 1e-9)
    return normalised


def mean_lab(data: bytes, k: int = 6) -> Vector:
    with Image.open(io.BytesIO(data)) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    pairs = dominant_colours(rgb, k)
    mean: Vector = np.sum([lab * cov for lab, cov in pairs], axis=0)
    return mean


def consistency(images: list[bytes], brand: BrandKit) -> Consistency:
    if len(images) < 2:
        return Consistency(images=len(images), palette_spread=None, descriptor_spread=None)
    dists = [palette_distribution(data, brand) for data in images]
    pairwise = [0.5 * float(np.abs(a - b).sum()) for a, b in combinations(dists, 2)]
    labs = np.stack([mean_lab(data) for data in images])
    centre = labs.mean(axis=0)
    spread = float(np.mean(delta_e_2000(labs, centre[None, :])))
    return Consistency(
        images=len(images),
        palette_spread=round(float(np.mean(pairwise)), 4),
        descriptor_spread=round(spread, 3),
    )
