"""A loader computed once per process, also when many threads ask for it at the same moment.

``functools.cache`` on a zero-argument loader caches the first result, but every thread that
calls before that result is stored runs the loader itself. The service's first burst of
requests did exactly that: sixteen submissions at once each compiled the moderation lexicon
(YAML and some thousand patterns), so the first sixteen answers took about 7 s instead of
0.05 s (``benchmarks/http_load.py``'s submissions with the workers off measured 0 jobs/s over
5 s). :func:`once` runs the loader in one thread while the others wait for its result.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Once", "once"]

T = TypeVar("T")


class Once(Generic[T]):
    """A zero-argument loader and its one result (``cache_clear`` forgets it, for tests)."""

    def __init__(self, load: Callable[[], T]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._value: T | None = None
        self._done = False
        functools.update_wrapper(self, load)

    def __call__(self) -> T:
        if not self._done:
            with self._lock:
                if not self._done:  # another thread may have loaded it while this one waited
                    self._value = self._load()
                    self._done = True
        return self._value  # type: ignore[return-value]

    def cache_clear(self) -> None:
        with self._lock:
            self._value, self._done = None, False


def once(load: Callable[[], T]) -> Once[T]:
    """Decorate a zero-argument loader: it runs once per process, in one thread at a time; a
    loader that raises is run again by the next caller."""
    return Once(load)
