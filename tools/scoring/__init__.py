"""Pixel quality signals the score node turns into :class:`~brandloop.domain.Scores`."""

from brandloop.tools.scoring.alignment import AlignmentScorer, load_alignment_scorer
from brandloop.tools.scoring.colour import delta_e_2000, dominant_colours, srgb_to_lab
from brandloop.tools.scoring.decode import ImageDecodeError, decode_image
from brandloop.tools.scoring.quality import colourfulness, contrast, format_match
from brandloop.tools.scoring.signals import (
    ImageAnalysis,
    analyse_image,
    exposure,
    palette_adherence,
    score_image,
    score_set,
    sharpness,
)
from brandloop.tools.scoring.similarity import (
    decode_descriptor,
    descriptor,
    encode_descriptor,
    hamming,
    phash,
)

__all__ = [
    "AlignmentScorer",
    "ImageAnalysis",
    "ImageDecodeError",
    "analyse_image",
    "colourfulness",
    "contrast",
    "decode_descriptor",
    "decode_image",
    "delta_e_2000",
    "descriptor",
    "dominant_colours",
    "encode_descriptor",
    "exposure",
    "format_match",
    "hamming",
    "load_alignment_scorer",
    "palette_adherence",
    "phash",
    "score_image",
    "score_set",
    "sharpness",
    "srgb_to_lab",
]
