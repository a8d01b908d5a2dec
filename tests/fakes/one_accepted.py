"""An image backend that makes one good image, then only images in Acme Coffee's forbidden
colour: a run asking for two accepts one in its first round and none after, so it ends short
(``partial``) wherever its stop is decided. ``BRANDLOOP_PROVIDER_PLUGINS=
tests.fakes.one_accepted:one_accepted_provider`` puts it behind a real ``brandloop`` command.
"""

from __future__ import annotations

import io

from PIL import Image

from brandloop.providers import ImageRequest, ImageResult
from tests.backends import steady_procedural


def _magenta(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (255, 0, 255)).save(buffer, format="PNG")
    return buffer.getvalue()


class OneAcceptedProvider:
    """The procedural renderer's studio model for the very first image it is asked for (a
    sharp one, whichever model was asked); magenta after that."""

    name = "procedural"

    def __init__(self) -> None:
        self.inner = steady_procedural()
        self.images = 0

    async def generate(self, request: ImageRequest) -> ImageResult:
        first = self.images == 0
        self.images += request.count
        made = await self.inner.generate(request)  # billed as the model asked for
        images = [
            image.model_copy(update={"data": _magenta(image.width, image.height)})
            for image in made.images
        ]
        if first:
            sharp = await self.inner.generate(request.model_copy(update={"model": "studio"}))
            images[0] = sharp.images[0]
        return made.model_copy(update={"images": images})


def one_accepted_provider() -> OneAcceptedProvider:
    return OneAcceptedProvider()
