"""Quality signals and safety gates: latency on a 1024×1024 image, and precision/recall of
moderation, PII and injection detection on the labelled fixtures (scripts/make_fixtures.py).

Latency is what the agent spends per image: ``NudeNetModerator`` (decode + NudeNet 320n), then
``analyse_image`` (palette, sharpness, exposure, contrast, colourfulness, format, similarity
against 20 accepted descriptors, hash and descriptor; it reuses the moderator's decode, as the
score node does after the moderate node) and the near-duplicate check against 3 earlier images.
The decode cache is cleared before every measured run. Median of ``--runs`` after warm-up.

Usage: .venv/bin/python benchmarks/signals.py [--runs 50] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.timing import measure  # noqa: E402 - after the path is set


def _render(side: int) -> bytes:
    from brandloop.providers import ImageRequest
    from brandloop.tools.providers.procedural import ProceduralProvider

    brief = (ROOT / "examples/briefs/autumn-sale.txt").read_text().strip()
    prompt = "strict palette: teal #0f766e, cream #fef3c7, espresso #4a2c2a; " + brief
    request = ImageRequest(model="studio", prompt=prompt, seed=7, width=side, height=side)
    result = asyncio.run(ProceduralProvider().generate(request))
    return result.images[0].data


def latency(runs: int) -> dict[str, Any]:
    import numpy as np

    from brandloop.policies.brandkit import load_brand_kit
    from brandloop.policies.scoring import load_scoring_policy
    from brandloop.tools.moderation.image import NudeNetModerator
    from brandloop.tools.scoring import analyse_image, score_set
    from brandloop.tools.scoring.decode import clear_decode_cache, decode_image

    data = _render(1024)
    brand = load_brand_kit(ROOT / "examples/brands/acme-coffee.yaml")
    policy = load_scoring_policy()
    rng = np.random.default_rng(0)
    references = [rng.normal(size=128).astype(np.float32) for _ in range(20)]
    earlier = [int(rng.integers(0, 2**63)) for _ in range(3)]
    moderator = NudeNetModerator()

    def signals() -> Any:
        analysis = analyse_image(
            data, brand=brand, width=1024, height=1024, policy=policy, references=references
        )
        return score_set([analysis], policy, earlier=earlier)

    def everything() -> Any:
        # as in the agent: moderate decodes the new image, score reuses that decode
        clear_decode_cache()
        return moderator(data), signals()

    def cold(fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            clear_decode_cache()
            return fn()

        return run

    parts = {
        "decode (PNG, 1024²)": cold(lambda: decode_image(data, max_pixels=policy.max_pixels)),
        "signals (decode + all per-image + set)": cold(signals),
        "moderation (decode + NudeNet 320n)": cold(lambda: moderator(data)),
        "all default signals + moderation": everything,
    }
    result = {}
    for name, fn in parts.items():
        result[name] = measure(fn, runs)
    return result


def quality() -> dict[str, Any]:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_fixtures", ROOT / "scripts/make_fixtures.py"
    )
    assert spec is not None and spec.loader is not None
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)

    from brandloop.tools.moderation.image import NudeNetModerator
    from brandloop.tools.moderation.injection import detect_injection
    from brandloop.tools.moderation.pii import find_pii
    from brandloop.tools.moderation.text import moderate_text

    def pr(pairs: list[tuple[bool, bool]]) -> dict[str, float | int]:
        tp = sum(p and e for p, e in pairs)
        fp = sum(p and not e for p, e in pairs)
        fn = sum(e and not p for p, e in pairs)
        return {
            "precision": round(tp / (tp + fp), 3) if tp + fp else 1.0,
            "recall": round(tp / (tp + fn), 3) if tp + fn else 1.0,
            "positives": tp + fn,
            "negatives": len(pairs) - tp - fn,
            "false_positives": fp,
        }

    terms = fixtures.BRAND["forbidden_terms"]
    text = pr(
        [
            (not moderate_text(t, forbidden_terms=terms).allowed, c is not None)
            for t, c in fixtures.MODERATION
        ]
    )
    pii_pairs: list[tuple[bool, bool]] = []
    for t, kinds in fixtures.PII:
        found = {f.kind for f in find_pii(t)}
        for kind in ("email", "phone", "card", "iban", "address"):
            pii_pairs.append((kind in found, kind in kinds))
    injection = pr([(detect_injection(t).detected, e) for t, e in fixtures.INJECTION])
    with tempfile.TemporaryDirectory() as tmp:
        manifest = fixtures.build(Path(tmp))
        moderator = NudeNetModerator()
        benign = [
            (not moderator((Path(tmp) / name).read_bytes()).allowed, False)
            for name, label in manifest["images"].items()
            if "bad" not in label
        ]
    return {
        "text moderation": text,
        "image moderation (benign fixtures only)": pr(benign),
        "PII (per text and kind)": pr(pii_pairs),
        "prompt injection": injection,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report = {
        "load_average_1min": round(load, 2),
        "cpus": os.cpu_count(),
        "latency_1024": latency(args.runs),
        "fixtures": quality(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"latency on a 1024x1024 PNG: wall median / p90 / min and CPU median of {args.runs} runs "
        f"({report['cpus']} CPUs, load average {report['load_average_1min']}):"
    )
    for name, value in report["latency_1024"].items():
        print(
            f"  {name:42s} {value['median_ms']:7.1f} ms  {value['p90_ms']:7.1f} ms  "
            f"{value['min_ms']:7.1f} ms   cpu {value['cpu_median_ms']:6.1f} ms"
        )
    print("fixtures:")
    for name, value in report["fixtures"].items():
        print(
            f"  {name:42s} precision {value['precision']:.3f}  recall {value['recall']:.3f}  "
            f"({value['positives']} positive, {value['negatives']} negative, "
            f"{value['false_positives']} false positives)"
        )


if __name__ == "__main__":
    main()
