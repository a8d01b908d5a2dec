"""Loaders computed once per process, also when many threads ask at the same moment."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from brandloop.once import Once, once


def test_many_threads_at_once_run_the_loader_once() -> None:
    calls: list[int] = []
    start = threading.Barrier(16)

    @once
    def load() -> object:
        calls.append(1)
        time.sleep(0.05)  # long enough that every thread arrives while the first one loads
        return object()

    def ask() -> object:
        start.wait()
        return load()

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: ask(), range(16)))
    assert len(calls) == 1  # functools.cache ran it in all 16 threads
    assert all(r is results[0] for r in results)


def test_a_loader_that_raises_is_run_again_and_cache_clear_forgets() -> None:
    attempts: list[int] = []

    @once
    def load() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("not yet")
        return len(attempts)

    with pytest.raises(OSError):
        load()
    assert load() == 2
    assert load() == 2
    load.cache_clear()
    assert load() == 3


def test_the_service_loaders_are_computed_once() -> None:
    from brandloop.agent import templates
    from brandloop.tools.moderation import image, lexicon, models, policy
    from brandloop.tools.moderation.semantic import classifier
    from brandloop.tools.scoring import signals

    loaders = [
        lexicon.default_lexicon,
        policy.default_moderation_policy,
        image.default_detector,
        classifier.default_semantic_layer,
        models.profanity_model,
        signals._default_policy,
        templates._shipped,
    ]
    assert all(isinstance(loader, Once) for loader in loaders)
