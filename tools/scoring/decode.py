"""Provider or user bytes → an 8-bit RGB image, safely: the one decoder scoring and moderation use.

The pixel count is checked from the header, *before* any pixel is decoded, so a small file that
claims to be 50 000 × 50 000 (a decompression bomb) is refused without allocating it. Alpha is
flattened onto white, 16-bit and float modes are scaled (not clipped), CMYK, palette and
greyscale images are converted.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import warnings
from collections import OrderedDict
from typing import Final

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from brandloop.tools.providers.errors import MalformedResponseError

#: Largest side we agree to decode; anything bigger is a broken or hostile response.
MAX_DECODE_SIDE: Final = 16384


class ImageDecodeError(MalformedResponseError):
    """The bytes are not a readable image (or are too large to decode safely)."""


#: The last few decoded images, keyed by a digest of their bytes: the moderate and score
#: nodes read the same image one after the other, and PNG decoding is the largest single cost
#: (~15 ms at 1024²). Callers must treat the returned image as read-only.
_CACHE_SIZE: Final = 8
#: Larger images are not kept: 8 × 4.2 MP of RGB is at most ~100 MB.
_CACHE_MAX_PIXELS: Final = 2048 * 2048
_cache: OrderedDict[tuple[bytes, int], Image.Image] = OrderedDict()
_cache_lock = threading.Lock()


def clear_decode_cache() -> None:
    with _cache_lock:
        _cache.clear()


def decode_image(
    data: bytes,
    *,
    max_pixels: int,
    width: int | None = None,
    height: int | None = None,
) -> Image.Image:
    """Decode ``data`` to an RGB image of at most ``max_pixels`` pixels (read-only: the
    result may be shared with the next caller that decodes the same bytes).

    ``width`` and ``height`` (the size that was asked for) let raw 8-bit pixel buffers of
    exactly ``width * height`` × 1, 3 or 4 bytes be read too, as some local backends return.

    Raises:
        ImageDecodeError: empty, corrupt, truncated or non-image bytes, or an image whose
            header announces more than ``max_pixels`` pixels.
    """
    key = (hashlib.blake2b(data, digest_size=16).digest(), max_pixels)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    image, raw = _decode(data, max_pixels=max_pixels, width=width, height=height)
    # raw buffers depend on the stated size, so only real image files are shared
    if not raw and image.width * image.height <= _CACHE_MAX_PIXELS:
        with _cache_lock:
            _cache[key] = image
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return image


def _decode(
    data: bytes, *, max_pixels: int, width: int | None, height: int | None
) -> tuple[Image.Image, bool]:
    """The decoded image, and whether it was read as a raw pixel buffer."""
    if not data:
        raise ImageDecodeError("the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_size(image.width, image.height, max_pixels)
            image.load()
            # upright, as a viewer shows it: a phone's portrait JPEG is landscape pixels with an
            # EXIF Orientation tag, and was scored (and moderated) lying on its side
            ImageOps.exif_transpose(image, in_place=True)
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own check comes first for a header past twice its limit: say ours
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        found = f"{int(pixels.group(1)):,} pixels" if pixels else "too many pixels"
        raise ImageDecodeError(
            f"image is too large: it has {found}; refusing to decode more than {max_pixels:,} pixels or "
            f"{MAX_DECODE_SIDE} a side"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raw = _from_raw(data, width=width, height=height)
        if raw is None:
            size = f", nor as raw {width}x{height} pixels" if width and height else ""
            raise ImageDecodeError(
                f"could not decode {len(data)} bytes as an image ({_short(exc)}){size}"
            ) from exc
        return raw, True
    return to_rgb(image), False


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return re.sub(r"\s*<_io\.\w+ object at 0x[0-9a-f]+>", "", text)[:120]


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"image has no pixels ({width}x{height})")
    if max(width, height) > MAX_DECODE_SIDE or width * height > max_pixels:
        raise ImageDecodeError(
            f"image is {width}x{height} ({width * height:,} pixels); refusing to decode more "
            f"than {max_pixels:,} pixels or {MAX_DECODE_SIDE} a side"
        )


def _from_raw(data: bytes, *, width: int | None, height: int | None) -> Image.Image | None:
    if not width or not height:
        return None
    pixels = width * height
    modes = {pixels: "L", 3 * pixels: "RGB", 4 * pixels: "RGBA"}
    if pixels <= 0 or len(data) not in modes:
        return None
    return to_rgb(Image.frombytes(modes[len(data)], (width, height), data))


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode → RGB: alpha over white, 16-bit/float scaled to 8 bits, CMYK converted."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image, dtype=np.float64)
        # 16-bit PNGs arrive as I;16 (or I); scale them down rather than clip at 255.
        if mode.startswith("I;16") or (values.size and float(np.nanmax(values)) > 255.0):
            values = values / 257.0
        values = np.nan_to_num(values, nan=0.0, posinf=255.0, neginf=0.0)
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8)).convert("RGB")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB")
