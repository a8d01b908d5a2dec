"""The transport's tests run on asyncio's own loop and on uvloop, which the CLI, the agents and
the workers run on (``brandloop/event_loop.py``): their transports differ (uvloop's are not
``asyncio.Transport`` subclasses, and they pause and resume reading and writing on their own
schedule). pytest-asyncio asks this hook for the loops of each test in this directory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    try:
        import uvloop
    except ImportError:  # not built for Windows: asyncio's loop only
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories
