"""The text gate on long briefs: median wall time per brief of 1 500-4 000 characters.

A brief may be up to 4 000 characters (``MAX_BRIEF_CHARS``); the semantic layer scores every
sentence chunk and clause of it (at most 24 of each), so a long brief is many embeddings, where
a typical brief is three. The long briefs are benign development lines joined 25 at a time
(``exemplars/untrained/dev12.yaml``, seeded, cut at 4 000 characters), never the held-out split.

Usage: ``.venv/bin/python benchmarks/text_gate_long.py [--briefs 20] [--runs 3]``
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOURCE = ROOT / "tools/moderation/semantic/exemplars/untrained/dev12.yaml"


def long_briefs(count: int, seed: int = 1) -> list[str]:
    from brandloop.tools.moderation.semantic.exemplars import load_exemplars

    lines = [e.text for e in load_exemplars(SOURCE) if e.benign]
    rng = random.Random(seed)
    return [" ".join(rng.sample(lines, 25))[:4000] for _ in range(count)]


def positive(text: str) -> int:
    if not (text.isascii() and text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--briefs", type=positive, default=20)
    parser.add_argument("--runs", type=positive, default=3)
    args = parser.parse_args()
    from brandloop.tools.moderation.text import moderate_text

    briefs = long_briefs(args.briefs)
    moderate_text(briefs[0])  # warm-up: models loaded
    took = []
    for _ in range(args.runs):
        for brief in briefs:
            started = time.perf_counter()
            moderate_text(brief)
            took.append((time.perf_counter() - started) * 1000)
    load = os.getloadavg()[0]
    chars = statistics.median(len(b) for b in briefs)
    print(
        f"text gate on {len(briefs)} long briefs (median {chars:.0f} characters) x {args.runs}: "
        f"median {statistics.median(took):.1f} ms, max {max(took):.1f} ms (load {load:.2f})"
    )


if __name__ == "__main__":
    main()
