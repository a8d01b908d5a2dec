"""A loader computed once per process, also when many threads ask for it at the same moment.

``functools.cache`` on a zero-argument loader caches the first result, but every thread that
calls before that result is stored runs the loader itself. The service's first burst of
requests did exactly that: sixteen submissions at once each compiled the moderation lexicon
(YAML and some thousand patterns), so the first sixteen answers took about 7 s instead of
0.05 s (``benchmarks/http_load.py``'s submissions with the workers off measured 0 jobs/s over
5 s). :func:`once` runs the loader in one thread while the others wait for its result.

Every load is recorded (:func:`loads`: which loader, how long, in which thread), so a process
can show whether its models were loaded at start (``api/warmup.py``) or by the first request
or job that needed them (``/metrics``: ``brandloop_model_loads``).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Load", "Once", "loads", "once", "record_load"]

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Load:
    """One load of a model or other once-per-process value: what, how long, in which thread."""

    loader: str
    seconds: float
    thread: str


_LOADS: list[Load] = []
_LOADS_LOCK = threading.Lock()


def record_load(loader: str, seconds: float) -> None:
    """Note that ``loader`` has just loaded, in the calling thread, in ``seconds``."""
    load = Load(loader, seconds, threading.current_thread().name)
    with _LOADS_LOCK:
        _LOADS.append(load)
    log.info(
        "loaded %s in %.2f s",
        loader,
        seconds,
        extra={"loader": loader, "load_seconds": round(seconds, 3), "loaded_in": load.thread},
    )


def loads() -> list[Load]:
    """Every load this process has made so far, oldest first."""
    with _LOADS_LOCK:
        return list(_LOADS)


class Once(Generic[T]):
    """A zero-argument loader and its one result (``cache_clear`` forgets it, for tests)."""

    def __init__(self, load: Callable[[], T]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._value: T | None = None
        self._done = False
        functools.update_wrapper(self, load)
        self.name = f"{load.__module__}.{load.__qualname__}"

    def __call__(self) -> T:
        if not self._done:
            with self._lock:
                if not self._done:  # another thread may have loaded it while this one waited
                    started = time.perf_counter()
                    self._value = self._load()
                    self._done = True
                    record_load(self.name, time.perf_counter() - started)
        return self._value  # type: ignore[return-value]

    def cache_clear(self) -> None:
        with self._lock:
            self._value, self._done = None, False


def once(load: Callable[[], T]) -> Once[T]:
    """Decorate a zero-argument loader: it runs once per process, in one thread at a time; a
    loader that raises is run again by the next caller."""
    return Once(load)
