"""Thumbnails and dominant colours for the studio's pages, made server-side and cached.

A grid never loads a full PNG: each image is resized once per width to a WebP file under
``<data_dir>/thumbs/<width>/`` (atomically written, keyed by the artifact's sha256, so the
cache never goes stale) and served with an ETag. They go with the artifact's file, when its
last owner deletes it (``ArtifactStore.remove``). Dominant colours are computed once per image
from a small downsample and kept in a bounded in-process cache.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image

from brandloop.artifacts import atomic_write, derived_path
from brandloop.tools.scoring.colour import dominant_colours, lab_to_hex

WIDTHS: Final = (256, 512, 1024)
_COLOURS: OrderedDict[str, list[tuple[str, float]]] = OrderedDict()
_COLOURS_MAX = 4096
_lock = threading.Lock()


def thumbnail_path(thumbs_root: Path, sha256: str, width: int) -> Path:
    """``<thumbs_root>/<width>/ab/<sha256>.webp``: removed with the artifact (the store's
    ``derived_root`` is ``thumbs_root``: ``Settings.thumbs_dir``)."""
    return derived_path(thumbs_root, sha256, str(width), ".webp")


def thumbnail(source: Path, thumbs_root: Path, sha256: str, width: int) -> Path:
    """The cached WebP of ``source`` at most ``width`` pixels wide (never upscaled)."""
    target = thumbnail_path(thumbs_root, sha256, width)
    if target.is_file():
        return target
    with Image.open(source) as image:
        image.load()
        rgb = image.convert("RGB")
    if rgb.width > width:
        height = max(1, round(rgb.height * width / rgb.width))
        rgb = rgb.resize((width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    rgb.save(buffer, format="WEBP", quality=82, method=4)
    atomic_write(target, buffer.getvalue())
    return target


def image_colours(source: Path, sha256: str, k: int = 5) -> list[tuple[str, float]]:
    """The image's ``k`` dominant colours as ``(hex, coverage)``, largest first."""
    with _lock:
        hit = _COLOURS.get(sha256)
        if hit is not None:
            _COLOURS.move_to_end(sha256)
            return hit
    with Image.open(source) as image:
        image.draft("RGB", (128, 128))
        small = image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR)
    pairs = dominant_colours(np.asarray(small, dtype=np.uint8), k)
    colours = [(lab_to_hex(lab), round(coverage, 3)) for lab, coverage in pairs]
    with _lock:
        _COLOURS[sha256] = colours
        if len(_COLOURS) > _COLOURS_MAX:
            _COLOURS.popitem(last=False)
    return colours
