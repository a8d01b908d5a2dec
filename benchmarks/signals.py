"""Quality signals and safety gates: latency on a 1024×1024 image; precision/recall of text
moderation per category on the held-out test split only, and the text gate's latency per brief;
precision/recall of PII and injection detection and image-moderation false blocks on the
labelled fixtures (scripts/make_fixtures.py).

Text moderation is scored on ``benchmarks/data/text_moderation_test.yaml``, which was written
after the classifier, its thresholds and the lexicon were fixed and is read by nothing else
(see tools/moderation/semantic/PROVENANCE.md). Between a split's demotion and the next one's
commit there is no held-out split: the script then stops with a message and prints no text
figure. ``--split PATH`` scores another exemplar file instead (a demoted ``dev*.yaml``), and
every heading then says it is NOT held out. A class with no positives prints
"not measured", never 1.0. Baselines on the same split: the blocklist as it shipped before
(``benchmarks/data/blocklist_v1.yaml``, exact phrases) and the lexical layer alone.
Beside it, on the held-out split's runs only: ``benchmarks/data/text_moderation_test_children.yaml``,
138 benign children's and family briefs close to the minors line, written by an author who
read nothing of the gate (false blocks only; ``--failures`` never prints its lines).
The text gate's latency is every offline layer (lexical, minors, semantic, profanity) on
each test brief, after warm-up; its median is what the gate adds per brief.

Latency is what the agent spends per image: ``NudeNetModerator`` (decode + NudeNet 320n), then
``analyse_image`` (palette, sharpness, exposure, contrast, colourfulness, format, similarity
against 20 accepted descriptors, hash and descriptor; it reuses the moderator's decode, as the
score node does after the moderate node) and the near-duplicate check against 3 earlier images.
The decode cache is cleared before every measured run. Median of ``--runs`` after warm-up.

``--failures`` also prints, per line, what the whole text gate got wrong: harmful lines not
blocked in their category (a ``sexual/minors`` line blocked only as ``sexual`` is a miss), and
benign lines blocked, each with the gate's reasons. Printing them reads the split: a held-out
split whose failures were printed is inspected, and the next round must demote it.

Usage: .venv/bin/python benchmarks/signals.py [--runs 50] [--json] [--text-only] [--split PATH]
       [--failures]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
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


Pairs = list[tuple[bool, bool]]


def pr(pairs: Pairs) -> dict[str, Any]:
    """Precision and recall of (predicted, expected) pairs; ``None`` where not measured."""
    tp = sum(p and e for p, e in pairs)
    fp = sum(p and not e for p, e in pairs)
    fn = sum(e and not p for p, e in pairs)
    return {
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        "positives": tp + fn,
        "negatives": len(pairs) - tp - fn,
        "false_positives": fp,
    }


TEST_SPLIT = ROOT / "benchmarks/data/text_moderation_test.yaml"
#: a second held-out file: benign children's and family briefs close to the minors line (no
#: harmful lines; its author declined to write them), scored beside the held-out split
CHILDREN_SPLIT = ROOT / "benchmarks/data/text_moderation_test_children.yaml"
BASELINE_BLOCKLIST = ROOT / "benchmarks/data/blocklist_v1.yaml"


def _predicted(categories: list[str]) -> set[str]:
    """A ``sexual/minors`` verdict is a sexual block too."""
    found = set(categories)
    if "sexual/minors" in found:
        found.add("sexual")
    return found


def text_quality(
    gates: dict[str, Callable[[str], Any]], split: Path = TEST_SPLIT
) -> dict[str, Any]:
    """Per-category precision/recall and false blocks of each gate on ``split`` (the held-out
    split unless told otherwise)."""
    from brandloop.tools.moderation.categories import CONTENT_CATEGORIES
    from brandloop.tools.moderation.semantic.exemplars import load_exemplars

    lines = load_exemplars(split)
    report: dict[str, Any] = {}
    for name, gate in gates.items():
        verdicts = [gate(line.text) for line in lines]
        per_category = {}
        for category in CONTENT_CATEGORIES:
            pairs = [
                (category in _predicted(v.categories), category in line.labels)
                for line, v in zip(lines, verdicts, strict=True)
            ]
            per_category[category] = pr(pairs)
        adults = [
            ("sexual" in _predicted(v.categories), True)
            for line, v in zip(lines, verdicts, strict=True)
            if line.group == "harmful:sexual"
        ]
        per_category["sexual (adult lines only)"] = pr(adults)
        blocked_any = {
            group: [
                not v.allowed
                for line, v in zip(lines, verdicts, strict=True)
                if line.group == group
            ]
            for group in sorted({line.group for line in lines if not line.benign})
        }
        benign = {}
        for line, v in zip(lines, verdicts, strict=True):
            if line.benign:
                domain = (
                    line.group.split(":")[1] if line.group.startswith("benign:") else "look-alikes"
                )
                seen = benign.setdefault(domain, [0, 0])
                seen[0] += 1
                seen[1] += not v.allowed
        briefs = [n for d, n in benign.items() if d != "look-alikes"]
        report[name] = {
            "categories": per_category,
            "blocked_at_all": {g: round(sum(b) / len(b), 3) for g, b in blocked_any.items()},
            "false_blocks": {d: {"lines": n, "blocked": b} for d, (n, b) in benign.items()},
            "false_block_rate_marketing_briefs": round(
                sum(b for _, b in briefs) / sum(n for n, _ in briefs), 4
            ),
            "marketing_briefs": sum(n for n, _ in briefs),
        }
    return report


def text_failures(gate: Callable[[str], Any], split: Path = TEST_SPLIT) -> list[dict[str, Any]]:
    """Every line ``gate`` gets wrong on ``split``: a harmful line not blocked in each of its
    categories, a benign line blocked; with the gate's categories and reasons."""
    from brandloop.tools.moderation.semantic.exemplars import load_exemplars

    failures = []
    for line in load_exemplars(split):
        verdict = gate(line.text)
        predicted = _predicted(verdict.categories)
        missed = sorted(line.labels - predicted)
        if line.benign and verdict.allowed:
            continue
        if not line.benign and not missed:
            continue
        failures.append(
            {
                "group": line.group,
                "kind": "false block" if line.benign else "miss",
                "missed": missed,
                "categories": list(verdict.categories),
                "reasons": list(verdict.reasons),
                "text": line.text,
            }
        )
    return failures


def text_latency(runs: int, split: Path = TEST_SPLIT) -> dict[str, Any]:
    """Every offline layer on every test brief: wall and CPU time per brief, after warm-up."""
    from brandloop.tools.moderation.semantic import default_semantic_layer
    from brandloop.tools.moderation.semantic.exemplars import load_exemplars
    from brandloop.tools.moderation.text import moderate_text

    texts = [line.text for line in load_exemplars(split)]
    layer = default_semantic_layer()
    parts: dict[str, Callable[[str], object]] = {
        "text gate (all offline layers)": lambda t: moderate_text(t),
        "semantic classifier alone (embed + heads)": layer.score,
        "lexical + minors layers alone": lambda t: moderate_text(
            t, semantic=None, profanity_threshold=None
        ),
    }
    result = {}
    for name, fn in parts.items():
        for text in texts[:20]:
            fn(text)
        wall, cpu = [], []
        for _ in range(max(1, runs // 25)):
            for text in texts:
                started, started_cpu = time.perf_counter(), time.process_time()
                fn(text)
                wall.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
        wall.sort()
        result[name] = {
            "briefs": len(wall),
            "median_ms": round(statistics.median(wall), 2),
            "p90_ms": round(wall[int(0.9 * (len(wall) - 1))], 2),
            "min_ms": round(wall[0], 2),
            "cpu_median_ms": round(statistics.median(cpu), 2),
        }
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

    pii_pairs: Pairs = []
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
        "image moderation (benign fixtures only)": pr(benign),
        "PII (per text and kind)": pr(pii_pairs),
        "prompt injection": injection,
    }


def _figure(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.3f}"


def _print_text(report: dict[str, Any]) -> None:
    where = report["text_split"]
    for name, gate in report["text_quality"].items():
        print(f"text moderation on {where}, {name}:")
        for category, value in gate["categories"].items():
            print(
                f"  {category:26s} precision {_figure(value['precision']):>12s}  "
                f"recall {_figure(value['recall']):>12s}  ({value['positives']} positive, "
                f"{value['false_positives']} false positives)"
            )
        print(
            f"  false blocks on {gate['marketing_briefs']} benign marketing briefs: "
            f"{gate['false_block_rate_marketing_briefs']:.2%}  "
            + ", ".join(f"{d} {v['blocked']}/{v['lines']}" for d, v in gate["false_blocks"].items())
        )
    for name, gate in report.get("children_near_the_line", {}).items():
        blocked = gate["false_blocks"]["children"]
        print(
            f"held-out children's briefs near the minors line ({CHILDREN_SPLIT.name}), {name}: "
            f"{blocked['blocked']}/{blocked['lines']} blocked "
            f"({gate['false_block_rate_marketing_briefs']:.2%})"
        )
    if "text_latency" in report:
        print(
            f"text gate latency per brief ({where}, after warm-up): wall median / p90 / min, "
            "CPU median"
        )
        for name, value in report["text_latency"].items():
            print(
                f"  {name:44s} {value['median_ms']:7.2f} ms  {value['p90_ms']:7.2f} ms  "
                f"{value['min_ms']:7.2f} ms   cpu {value['cpu_median_ms']:6.2f} ms  "
                f"({value['briefs']} briefs)"
            )


def _print_failures(failures: list[dict[str, Any]]) -> None:
    print(f"lines the text gate (all offline layers) gets wrong: {len(failures)}")
    for failure in failures:
        missed = f" missed {', '.join(failure['missed'])}" if failure["missed"] else ""
        got = ", ".join(failure["categories"]) or "allowed"
        print(f"- [{failure['group']}] {failure['kind']}{missed}; gate: {got}")
        print(f"    {failure['text']}")
        for reason in failure["reasons"]:
            print(f"    · {reason}")


def text_gates() -> dict[str, Callable[[str], Any]]:
    from brandloop.tools.moderation.lexicon import load_lexicon
    from brandloop.tools.moderation.text import moderate_text

    v1 = load_lexicon(BASELINE_BLOCKLIST)
    return {
        "text gate (all offline layers)": lambda t: moderate_text(t),
        "baseline: lexical layer alone": lambda t: moderate_text(
            t, semantic=None, profanity_threshold=None
        ),
        "baseline: the v1 blocklist (exact phrases)": lambda t: moderate_text(
            t, blocklist=v1, semantic=None, profanity_threshold=None
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--text-only", action="store_true", help="only the text gate figures")
    parser.add_argument(
        "--split",
        type=Path,
        default=None,
        help="score this exemplar file instead of the held-out split (reported as NOT held out)",
    )
    parser.add_argument(
        "--failures",
        action="store_true",
        help="also print every line the whole text gate gets wrong (this reads the split)",
    )
    args = parser.parse_args()
    split = args.split if args.split is not None else TEST_SPLIT
    if args.split is None and not TEST_SPLIT.exists():
        raise SystemExit(
            f"benchmarks/signals.py: there is no held-out text split at {TEST_SPLIT}: the last one "
            "was demoted to development data (tools/moderation/semantic/exemplars/dev*.yaml) and "
            "the next is committed after the round that demoted it is pinned. No text moderation "
            "figure is printed without it; --split PATH scores a development split, labelled as "
            "NOT held out."
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report: dict[str, Any] = {"load_average_1min": round(load, 2), "cpus": os.cpu_count()}
    report["text_split"] = (
        "the held-out split"
        if args.split is None
        else f"{split.name} (a development split, NOT held out: its failures were read)"
    )
    gates = text_gates()
    report["text_quality"] = text_quality(gates, split)
    if args.split is None and CHILDREN_SPLIT.exists():
        report["children_near_the_line"] = text_quality(gates, CHILDREN_SPLIT)
    if args.failures:
        report["text_failures"] = text_failures(gates["text gate (all offline layers)"], split)
    report["text_latency"] = text_latency(args.runs, split)
    if not args.text_only:
        report["latency_1024"] = latency(args.runs)
        report["fixtures"] = quality()
    report["load_average_1min_after"] = round(
        os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"), 2
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"({report['cpus']} CPUs, load average {report['load_average_1min']} before, "
        f"{report['load_average_1min_after']} after)"
    )
    _print_text(report)
    if "text_failures" in report:
        _print_failures(report["text_failures"])
    if args.text_only:
        return
    print(
        f"latency on a 1024x1024 PNG: wall median / p90 / min and CPU median of {args.runs} runs:"
    )
    for name, value in report["latency_1024"].items():
        print(
            f"  {name:42s} {value['median_ms']:7.1f} ms  {value['p90_ms']:7.1f} ms  "
            f"{value['min_ms']:7.1f} ms   cpu {value['cpu_median_ms']:6.1f} ms"
        )
    print("fixtures:")
    for name, value in report["fixtures"].items():
        print(
            f"  {name:42s} precision {_figure(value['precision'])}  "
            f"recall {_figure(value['recall'])}  ({value['positives']} positive, "
            f"{value['negatives']} negative, {value['false_positives']} false positives)"
        )


if __name__ == "__main__":
    main()
