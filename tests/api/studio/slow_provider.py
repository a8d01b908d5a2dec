"""The procedural provider, slowed down: ``BRANDLOOP_PROVIDER_PLUGINS=
tests.api.studio.slow_provider:slow_procedural`` in a real ``brandloop serve`` so a browser test
sees a run's events and images arrive while it runs (``BL_TEST_SLEEP_S`` seconds a call)."""

from __future__ import annotations

import asyncio
import os

from brandloop.providers import ImageRequest, ImageResult
from tests.backends import steady_procedural


class SlowProcedural:
    name = "procedural"

    def __init__(self, sleep_s: float) -> None:
        self.inner = steady_procedural()
        self.sleep_s = sleep_s

    async def generate(self, request: ImageRequest) -> ImageResult:
        await asyncio.sleep(self.sleep_s)
        return await self.inner.generate(request)


def slow_procedural() -> SlowProcedural:
    return SlowProcedural(float(os.environ.get("BL_TEST_SLEEP_S", "1.0")))
