"""Pixel quality signals the score node turns into :class:`~brandloop.domain.Scores`."""

from tools.scoring.colour import delta_e_2000, dominant_colours, srgb_to_lab
from tools.scoring.signals import exposure, palette_adherence, score_image, sharpness

__all__ = [
    "delta_e_2000",
    "dominant_colours",
    "exposure",
    "palette_adherence",
    "score_image",
    "sharpness",
    "srgb_to_lab",
]
