"""Terminal thumbnails: an image drawn with half-block characters, two pixels per cell."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from rich.text import Text


def thumbnail(data: bytes, width: int = 32) -> Text:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    height = max(2, round(width * image.height / image.width / 2) * 2)
    small = image.resize((width, height), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.uint8).tolist()  # rows of [r, g, b]
    text = Text()
    for y in range(0, height, 2):
        for x in range(width):
            top, bottom = pixels[y][x], pixels[y + 1][x]
            text.append(
                "▀",
                style=f"rgb({top[0]},{top[1]},{top[2]}) on rgb({bottom[0]},{bottom[1]},{bottom[2]})",
            )
        text.append("\n")
    return text
