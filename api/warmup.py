"""Loading the process's models before it takes work (``brandloop serve``, ``brandloop worker``).

Each model loads once per process, on first use (``brandloop/once.py``). In a fresh process that
first use was a request or a job: the first submission waited ~7 s for the moderation classifier
(the minors line is checked at the door), and a fresh Celery worker's first job 10-20 s, its
loading blocking the worker's one event loop and every job behind it. :class:`Warmup` loads them
at start, in a thread of its own, and says what it is still loading: ``/readyz`` answers 503
``warming: <what>`` until it is done (a load balancer sends a cold replica nothing), and names a
model that failed to load. ``BRANDLOOP_WARM_UP=false`` turns it off (models load on first use).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Literal

from brandloop.agent.templates import shipped_template_names
from brandloop.memory.embeddings import MiniLMEmbeddingFunction
from brandloop.tools.moderation.image import default_detector
from brandloop.tools.moderation.lexicon import default_lexicon
from brandloop.tools.moderation.models import profanity_model
from brandloop.tools.moderation.policy import default_moderation_policy
from brandloop.tools.moderation.semantic.classifier import default_semantic_layer

__all__ = ["MODELS", "WARMUP_THREAD", "Warmup", "freeze_long_lived"]

log = logging.getLogger(__name__)

#: the thread the models load in (``/metrics`` ``brandloop_model_loads`` names it)
WARMUP_THREAD = "brandloop-warmup"

Model = tuple[str, Callable[[], object]]
State = Literal["waiting", "loading", "ok"]


def _embedding_model() -> None:
    MiniLMEmbeddingFunction().load()


#: what a request or job would otherwise load on first use; the door's moderation first
MODELS: tuple[Model, ...] = (
    ("moderation policy", default_moderation_policy),
    ("moderation lexicon", default_lexicon),
    ("embedding model", _embedding_model),
    ("moderation classifier", default_semantic_layer),
    ("profanity model", profanity_model),
    ("image moderation model", default_detector),
    ("shipped templates", shipped_template_names),
)


class Warmup:
    """Loads ``models`` once, off the caller's thread, and tells how far it has got."""

    def __init__(self, models: Sequence[Model] = MODELS, *, freeze: bool = False) -> None:
        """``freeze``: once loaded, leave what is alive out of later garbage collections
        (:func:`freeze_long_lived`; a serving process or worker, not a test's)."""
        self._models = tuple(models)
        self._freeze = freeze
        self._lock = threading.Lock()
        self._states: dict[str, str] = {name: "waiting" for name, _ in self._models}
        self._thread = threading.Thread(target=self._load_all, name=WARMUP_THREAD, daemon=True)

    def start(self) -> None:
        """Begin loading in the background (idempotent)."""
        with self._lock:
            if self._thread.ident is None:
                self._thread.start()

    def run(self) -> None:
        """Load everything and return when done (the models still load in :data:`WARMUP_THREAD`)."""
        self.start()
        self._thread.join()

    def check(self) -> str:
        """``ok``; ``warming: <models still loading>``; or ``failed: <model> (<error>)``."""
        with self._lock:
            states = dict(self._states)
        failed = [
            f"{name} ({state.removeprefix('failed: ')})"
            for name, state in states.items()
            if state.startswith("failed: ")
        ]
        if failed:
            return "failed: " + ", ".join(failed)
        pending = [name for name, state in states.items() if state in ("waiting", "loading")]
        return "warming: " + ", ".join(pending) if pending else "ok"

    def _set(self, name: str, state: State | str) -> None:
        with self._lock:
            self._states[name] = state

    def _load_all(self) -> None:
        started = time.perf_counter()
        for name, load in self._models:
            self._set(name, "loading")
            try:
                load()
            except Exception as exc:  # /readyz names it; the process stays up to say so
                self._set(name, f"failed: {type(exc).__name__}")
                log.error("warm-up: %s failed to load (%s: %s)", name, type(exc).__name__, exc)
                continue
            self._set(name, "ok")
        if self._freeze:
            freeze_long_lived()
        log.info("warm-up done in %.1f s: %s", time.perf_counter() - started, self.check())


def freeze_long_lived() -> None:
    """Leave the objects alive now (the app, the models: ~200k of them) out of every later
    garbage collection. They live as long as the process, yet each full collection walked them
    all: 70-100 ms with the loop stopped, which took a served ``GET``'s p99 from 10 ms to 40 ms
    once the models loaded at start (``benchmarks/http_load.py``). One collection first, so
    what is already garbage is freed rather than kept forever."""
    gc.collect()
    gc.freeze()
