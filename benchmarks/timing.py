"""Timing for the benchmarks: wall clock and CPU time of a function over repeated runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def measure(fn: Callable[[], object], runs: int) -> dict[str, float]:
    """Wall-clock median, p90 and min, and the median CPU time of the process (all threads).

    On a shared machine the wall clock also counts the time other processes held the CPUs;
    CPU time is what this code itself costs.
    """
    for _ in range(3):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    wall.sort()
    return {
        "median_ms": round(statistics.median(wall), 1),
        "p90_ms": round(wall[int(0.9 * (len(wall) - 1))], 1),
        "min_ms": round(wall[0], 1),
        "cpu_median_ms": round(statistics.median(cpu), 1),
    }
