"""Measure the drift detector's false-alarm rate on noise and its delay on a real drop.

    .venv/bin/python benchmarks/drift_false_alarms.py [--streams 1000] [--length 200]

Streams are seeded N(0.70, 0.05) composite scores (clipped to [0, 1]); the drop streams have 80
in-control scores followed by N(0.60, 0.05) (a 2-σ drop). Uses the shipped policies/drift.yaml.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from brandloop.policies.drift import load_drift_policy
from brandloop.templates.cusum import scan


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--length", type=int, default=200)
    args = parser.parse_args()
    policy = load_drift_policy()
    false_streams = false_alarms = 0
    for seed in range(args.streams):
        stream = np.clip(np.random.default_rng(seed).normal(0.7, 0.05, args.length), 0, 1)
        alarms = scan(stream.tolist(), policy).alarms
        false_alarms += len(alarms)
        false_streams += bool(alarms)
    delays: list[int] = []
    missed = early = 0
    for seed in range(args.streams):
        rng = np.random.default_rng(1_000_000 + seed)
        stream = np.clip(np.r_[rng.normal(0.7, 0.05, 80), rng.normal(0.6, 0.05, 120)], 0, 1)
        alarms = scan(stream.tolist(), policy).alarms
        early += any(a.index < 80 for a in alarms)
        after = [a for a in alarms if a.index >= 80]
        if after:
            delays.append(after[0].index - 79)
        else:
            missed += 1
    print(f"policy: {policy.model_dump()}")
    print(
        f"noise: {false_streams}/{args.streams} streams of {args.length} scores raised an alarm "
        f"({false_alarms} alarms, {false_alarms / (args.streams * args.length):.2e} per score)"
    )
    print(
        f"2-sigma drop: missed {missed}/{args.streams}, alarm before the drop in {early}; "
        f"delay mean {statistics.mean(delays):.1f}, median {statistics.median(delays)}, "
        f"max {max(delays)} scores"
    )


if __name__ == "__main__":
    main()
