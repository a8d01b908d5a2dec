"""Output formats: accepted images leave in the format the model made them, or the one the
request asks for (PNG, JPEG, WebP), re-encoded once, before the receipt and manifest go in."""

from __future__ import annotations

import io
from typing import Final

from PIL import Image

from brandloop.domain import ImageFormat

JPEG_QUALITY: Final = 92
WEBP_QUALITY: Final = 90
_PIL_FORMATS: Final[dict[ImageFormat, str]] = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def transcode(data: bytes, to: ImageFormat) -> bytes:
    """``data`` re-encoded as ``to`` (JPEG has no alpha: transparent areas go white)."""
    with Image.open(io.BytesIO(data)) as source:
        source.load()
        picture = source.copy()
    options: dict[str, object] = {}
    if to == "jpeg":
        if "A" in picture.getbands() or picture.mode == "P":
            rgba = picture.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            picture = flat
        elif picture.mode != "RGB":
            picture = picture.convert("RGB")
        options = {"quality": JPEG_QUALITY}
    elif to == "webp":
        options = {"quality": WEBP_QUALITY, "method": 4}
    buffer = io.BytesIO()
    picture.save(buffer, format=_PIL_FORMATS[to], **options)
    return buffer.getvalue()
