"""Post-processing: bring an image a backend made at its nearest supported size to the size
that was asked for (centre crop to the aspect ratio, then a Lanczos resize), as PNG.
"""

from __future__ import annotations

import io

from PIL import Image

from brandloop.providers import GeneratedImage
from brandloop.tools.providers.errors import MalformedResponseError


def fit(image: GeneratedImage, width: int, height: int) -> GeneratedImage:
    """``image`` at exactly ``width`` x ``height``; returned untouched when it already is.

    Raises MalformedResponseError when the bytes do not decode."""
    if (image.width, image.height) == (width, height):
        return image
    try:
        with Image.open(io.BytesIO(image.data)) as source:
            source.load()
            picture = source.convert("RGBA" if "A" in source.getbands() else "RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MalformedResponseError(
            f"image does not decode ({type(exc).__name__})", provider=""
        ) from exc
    src_w, src_h = picture.size
    target = width / height
    if src_w / src_h > target:  # too wide: crop the sides
        crop_w = max(1, round(src_h * target))
        left = (src_w - crop_w) // 2
        box = (left, 0, left + crop_w, src_h)
    else:  # too tall: crop top and bottom
        crop_h = max(1, round(src_w / target))
        top = (src_h - crop_h) // 2
        box = (0, top, src_w, top + crop_h)
    resized = picture.crop(box).resize((width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    resized.save(buffer, format="PNG")
    return GeneratedImage(
        data=buffer.getvalue(), format="png", width=width, height=height, seed=image.seed
    )
