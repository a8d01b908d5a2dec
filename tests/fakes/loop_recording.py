"""The procedural renderer, noting which event loop each call runs on:
``BRANDLOOP_PROVIDER_PLUGINS=tests.fakes.loop_recording:loop_recording_provider`` puts it
behind a real ``brandloop`` command (tests/test_event_loop.py)."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from brandloop.providers import ImageRequest, ImageResult
from tests.backends import steady_procedural


class LoopRecordingProvider:
    name = "procedural"
    #: the module of each call's running loop (``uvloop`` or ``asyncio.unix_events``)
    loops: ClassVar[list[str]] = []

    def __init__(self) -> None:
        self.inner = steady_procedural()

    async def generate(self, request: ImageRequest) -> ImageResult:
        LoopRecordingProvider.loops.append(type(asyncio.get_running_loop()).__module__)
        return await self.inner.generate(request)


def loop_recording_provider() -> LoopRecordingProvider:
    return LoopRecordingProvider()
