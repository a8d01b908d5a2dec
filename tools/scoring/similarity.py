"""Perceptual hashes (near-duplicates within a set) and compact image descriptors (similarity
to the brand's accepted assets).

The hash is the classic 64-bit DCT pHash: 32×32 luminance, 2-D DCT, the 8×8 lowest
frequencies (DC included) compared with their median. Two renders of one composition differ by
a few bits; different compositions by ~32. The descriptor is 128 floats: a 4×4×4 joint CIELAB
histogram (square-rooted, so cosine is the Hellinger affinity) and an 8×8 luminance layout
(zero-mean), each unit-norm, weighted so colour makes 80 % of the cosine; it travels as a short base64 string (uint8 quantised) so it
fits in Chroma metadata.
"""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image

from brandloop.domain import Signal
from brandloop.policies.scoring import DuplicatePolicy, SimilarityPolicy
from brandloop.tools.scoring.colour import srgb_to_lab
from brandloop.tools.scoring.decode import decode_image

DESCRIPTOR_SIZE = 128
_HASH_SIDE = 32
#: Share of the cosine that comes from colour (the rest from layout): brand look is mostly colour.
_COLOUR_SHARE = 0.8


@functools.cache
def _dct_matrix(n: int) -> npt.NDArray[np.float64]:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    matrix[0] /= math.sqrt(2.0)
    return matrix


def phash(image: Image.Image) -> int:
    """64-bit DCT perceptual hash of an image (any mode)."""
    small = image.convert("L").resize((_HASH_SIDE, _HASH_SIDE), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.float64)
    dct = _dct_matrix(_HASH_SIDE)
    low = (dct @ pixels @ dct.T)[:8, :8].ravel()
    bits = low > np.median(low)
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    return (a ^ b).bit_count()


def duplicate_signal(
    own: int, earlier: Sequence[int], policy: DuplicatePolicy, *, labels: Sequence[str] = ()
) -> Signal:
    """How far this image's hash is from the nearest *earlier* image of the set.

    The first image of a set is never a duplicate (value 1); a later one within
    ``threshold × distance_full`` bits of an earlier one fails, so one of two copies survives.
    """
    if not earlier:
        return Signal(
            name="duplicate",
            value=1.0,
            raw=64.0,
            passed=True,
            threshold=policy.threshold,
            explanation="first image of its set: nothing to duplicate",
        )
    distances = [hamming(own, other) for other in earlier]
    nearest = int(np.argmin(distances))
    distance = distances[nearest]
    name = f" ({labels[nearest]})" if nearest < len(labels) else ""
    return Signal.judged(
        "duplicate",
        min(distance / policy.distance_full, 1.0),
        raw=float(distance),
        threshold=policy.threshold,
        explain=lambda passed: (
            f"perceptual hash {distance}/64 bits from the nearest earlier "
            f"image{name}: {'distinct' if passed else 'a near-duplicate'}"
        ),
    )


def descriptor(image: Image.Image) -> npt.NDArray[np.float32]:
    """The 128-float compact descriptor of an image (see the module docstring)."""
    rgb = np.asarray(image.convert("RGB").resize((32, 32), Image.Resampling.BOX), dtype=np.uint8)
    lab = srgb_to_lab(rgb).reshape(-1, 3)
    l_bin = np.clip((lab[:, 0] / 25.0).astype(int), 0, 3)
    a_bin = np.clip(((lab[:, 1] + 60.0) / 30.0).astype(int), 0, 3)
    b_bin = np.clip(((lab[:, 2] + 60.0) / 30.0).astype(int), 0, 3)
    hist = np.bincount(l_bin * 16 + a_bin * 4 + b_bin, minlength=64).astype(np.float64)
    hist = np.sqrt(hist / hist.sum())
    layout = lab[:, 0].reshape(32, 32).reshape(8, 4, 8, 4).mean(axis=(1, 3)).ravel()
    layout = layout - layout.mean()
    norm = float(np.linalg.norm(layout))
    layout = layout / norm if norm > 1e-9 else np.zeros(64)
    vector = np.concatenate([hist * _COLOUR_SHARE**0.5, layout * (1.0 - _COLOUR_SHARE) ** 0.5])
    return vector.astype(np.float32)


def encode_descriptor(vector: npt.NDArray[np.float32]) -> str:
    """A descriptor as ~172 base64 characters (each component quantised to a byte)."""
    if vector.shape != (DESCRIPTOR_SIZE,):
        raise ValueError(f"a descriptor has {DESCRIPTOR_SIZE} components, got {vector.shape}")
    quantised = np.clip(np.rint(vector * 127.0 + 128.0), 0, 255).astype(np.uint8)
    return base64.b64encode(quantised.tobytes()).decode("ascii")


def decode_descriptor(text: str) -> npt.NDArray[np.float32]:
    """Inverse of :func:`encode_descriptor`; raises ValueError on anything else."""
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    if len(raw) != DESCRIPTOR_SIZE:
        raise ValueError(f"descriptor has {len(raw)} bytes, expected {DESCRIPTOR_SIZE}")
    return ((np.frombuffer(raw, dtype=np.uint8).astype(np.float32)) - 128.0) / 127.0


def cosine(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denominator if denominator > 1e-12 else 0.0


def similarity_signal(
    own: npt.NDArray[np.float32],
    references: Sequence[npt.NDArray[np.float32]],
    policy: SimilarityPolicy,
) -> Signal | None:
    """The best cosine similarity to the brand's accepted assets, clipped to [0, 1].

    ``None`` when there are no references: a brand's first run has nothing to resemble, and a
    missing signal is better than an invented one.
    """
    if not references:
        return None
    matrix = np.stack(references)
    norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(own)), 1e-12)
    sims = (matrix @ own) / np.maximum(norms, 1e-12)
    best = float(sims.max())
    mean = float(sims.mean())
    return Signal.judged(
        "similarity",
        min(max(best, 0.0), 1.0),
        raw=best,
        threshold=policy.threshold,
        explain=lambda passed: (
            f"{'in keeping with' if passed else 'unlike'} the brand's accepted images: "
            f"best match {best:.2f}, mean {mean:.2f} over {len(references)}"
        ),
    )


def descriptor_of(data: bytes, *, max_pixels: int = 40_000_000) -> str:
    """The encoded descriptor of an image's bytes, for storing with an accepted image."""
    return encode_descriptor(descriptor(decode_image(data, max_pixels=max_pixels)))
