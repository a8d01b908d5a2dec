"""Accepted images per dollar: the agent against the loops a user writes by hand, in worlds it
cannot read.

The worlds are simulated OpenAI-compatible backends (``benchmarks/sim_world.py``): three models
on two providers whose hidden defect rates (palette accent, blur, exposure, per model and
quality setting) are drawn from a world seed, so no fixed strategy is right in every world.
Only generic prompt features change outcomes (colours named, colour words outside the palette,
``#rrggbb`` codes, prompt length, the ``Avoid:`` clause, the quality setting); no phrase is
special. Every dollar is what the simulated backend's own ledger charged.

Every method uses the agent's own acceptance rule (``brandloop.agent.diagnosis.is_accepted``
with the shipped agent policy and each brand's scoring policy) and wants one image per request:

  best-of-N <model>        N images in one call; the request succeeds if any is accepted
  first-accept <model>     one image at a time, stop at the first accepted, at most N
  escalate k->best         first-accept on the cheapest model for k tries, then on the model
                           the vendor claims is best for the rest of the N
  agent                    ``brandloop.agent.runner.run_generation``: bandit, diagnosis,
                           repairs, stopping rule; memory on unless --no-memory

The hand-written loops send brandloop's composed prompt (the shipped template, normal palette
emphasis), as a user of the composer would; ``--strong-baselines`` adds the same loops on the
strong-emphasis prompt. The best loop of each world is picked after the fact (hindsight), which
no user could do: a conservative bar. Requests are 60 briefs over the three shipped brands, a
third of them naming colours outside the brand palette. Usage::

    .venv/bin/python benchmarks/agent_value.py --worlds 5 --requests 60 [--n 4] [--k 2]
        [--strong-baselines] [--agent-policy FILE] [--seeds 7,8,9,10,11]

``--seeds`` runs every world once per request-mix seed (the world seed stays the world index)
and adds a table pooled over the seeds: per method, total accepted over total dollars, the best
loop picked on the pooled figures (one mix of 60 requests leaves a single world's ratio noisy).

``--agent-policy`` runs the agent, and the acceptance rule every method is judged by, under
another agent policy file (the worlds start with no ``BRANDLOOP_*`` variable set, so
``BRANDLOOP_AGENT_POLICY`` does not reach them). The figures are deterministic: the same code
and arguments give the same table.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

BRIEFS = [
    ("acme-coffee.yaml", "A calm morning ritual, a coffee cup by the window with soft light"),
    ("acme-coffee.yaml", "Latte art in a ceramic cup on a wooden counter, close-up"),
    ("acme-coffee.yaml", "Hero banner for the autumn sale: warm orange and red leaves around a steaming coffee cup"),
    ("acme-coffee.yaml", "Spring menu card, pastel pink and lavender, airy and light, a coffee cup with a pastry"),
    ("nordlys-outdoor.yaml", "Launch visual for the new alpine jacket: a climber on a ridge at sunrise, crisp and bold"),
    ("nordlys-outdoor.yaml", "A tent under a starry sky by a frozen lake, cold tones"),
    ("nordlys-outdoor.yaml", "Summer trail poster with a hiker in a bright yellow and purple jacket among wildflowers"),
    ("nordlys-outdoor.yaml", "Backpack product still on granite, morning light"),
    ("bloom-skincare.yaml", "Product shot of the new spring serum among fresh leaves and petals"),
    ("bloom-skincare.yaml", "A calm evening routine: deep blue bathroom, candles, a glass bottle of night cream"),
    ("bloom-skincare.yaml", "A morning skincare routine on a marble shelf with a towel"),
    ("bloom-skincare.yaml", "Holiday gift set on red velvet with gold ribbon"),
]  # fmt: skip


@dataclass
class Tally:
    """One method in one world: per request, accepted or not and the dollars it was charged."""

    costs: list[float] = field(default_factory=list)
    accepted: list[bool] = field(default_factory=list)

    def add(self, cost: float, ok: bool) -> None:
        self.costs.append(cost)
        self.accepted.append(ok)

    @property
    def spent(self) -> float:
        return sum(self.costs)

    @property
    def per_dollar(self) -> float:
        return sum(self.accepted) / self.spent if self.spent else 0.0

    @property
    def per_image(self) -> float | None:
        n = sum(self.accepted)
        return self.spent / n if n else None

    def failed_vs_median_success(self) -> tuple[float | None, float | None, float | None]:
        """Mean and max cost of requests with nothing accepted, median of successful ones."""
        failed = [c for c, ok in zip(self.costs, self.accepted, strict=True) if not ok]
        good = [c for c, ok in zip(self.costs, self.accepted, strict=True) if ok]
        return (
            statistics.mean(failed) if failed else None,
            max(failed) if failed else None,
            statistics.median(good) if good else None,
        )


@dataclass
class Job:
    kit: Any
    brief: str


def _fresh_env(data_dir: Path) -> None:
    for key in [k for k in os.environ if k.startswith("BRANDLOOP_")]:
        del os.environ[key]
    os.environ["BRANDLOOP_DATA_DIR"] = str(data_dir)


class Judge:
    """The agent's acceptance rule, with each brand's scoring policy; scores cached by bytes."""

    def __init__(self) -> None:
        from brandloop.policies.agent import load_agent_policy
        from brandloop.policies.brand_policy import load_brand_scoring_policy

        self.policy = load_agent_policy()
        self._scoring = load_brand_scoring_policy
        self._cache: dict[tuple[str, str], bool] = {}

    def accepted(self, kit: Any, png: bytes, size: int) -> bool:
        from brandloop.agent.diagnosis import is_accepted
        from brandloop.domain import Attempt, Candidate
        from brandloop.tools.scoring.signals import analyse_image, score_set

        key = (kit.slug, hashlib.sha256(png).hexdigest())
        if key not in self._cache:
            policy = self._scoring(kit.slug)
            analysis = analyse_image(png, brand=kit, width=size, height=size, policy=policy)
            scores = score_set([analysis], policy)[0]
            cand = Candidate(
                id="x", template="t@1", prompt="", model="m", seed=0, width=size, height=size
            )
            self._cache[key] = is_accepted(
                Attempt(id="x", candidate=cand, outcome="pending", scores=scores), self.policy
            )
        return self._cache[key]


def baseline_prompt(job: Job, template: Any, spec: Any, *, strong: bool, size: int) -> str:
    """The prompt a composer user sends: compose, then fold as brandloop's adapter does."""
    from brandloop.domain import Candidate
    from brandloop.tools.composer import compose
    from brandloop.tools.providers.batching import build_request

    prompt, negative = compose(
        template, brand=job.kit, brief=job.brief, emphasis="strong" if strong else "normal"
    )
    cand = Candidate(
        id="b",
        template=template.ref,
        prompt=prompt,
        negative_prompt=negative,
        model=spec.id,
        seed=0,
        width=size,
        height=size,
    )
    return build_request(spec, [cand], idempotency_key="b").prompt


Loop = Callable[[Any, Job, dict[str, str], Judge, int], bool]


def best_of_n(model: str, n: int) -> Loop:
    def run(session: Any, job: Job, prompts: dict[str, str], judge: Judge, size: int) -> bool:
        images = session.generate(model, None, prompts[model], n)
        return any(judge.accepted(job.kit, png, size) for png in images)

    return run


def first_accept(plan: list[tuple[str, int]]) -> Loop:
    def run(session: Any, job: Job, prompts: dict[str, str], judge: Judge, size: int) -> bool:
        for model, tries in plan:
            for _ in range(tries):
                (png,) = session.generate(model, None, prompts[model], 1)
                if judge.accepted(job.kit, png, size):
                    return True
        return False

    return run


def loops(models: list[str], cheapest: str, claimed_best: str, n: int, k: int) -> dict[str, Loop]:
    found: dict[str, Loop] = {}
    for model in models:
        found[f"best-of-{n} {model}"] = best_of_n(model, n)
        found[f"first-accept<={n} {model}"] = first_accept([(model, n)])
    found[f"escalate {cheapest} x{k} -> {claimed_best} x{n - k}"] = first_accept(
        [(cheapest, k), (claimed_best, n - k)]
    )
    return found


async def run_world(
    seed: int, args: argparse.Namespace, jobs_spec: list[tuple[str, str]]
) -> dict[str, Tally]:
    import httpx
    import sim_world

    from brandloop.agent.runner import run_generation
    from brandloop.agent.templates import resolve_template
    from brandloop.domain import GenerationRequest, ModerationVerdict
    from brandloop.policies.brandkit import load_brand_kit
    from brandloop.registry import crud
    from brandloop.registry.db import Database
    from brandloop.settings import get_settings
    from brandloop.tools.providers.openai import OpenAIImagesProvider

    data_dir = Path(tempfile.mkdtemp(prefix=f"bl-value-w{seed}-"))
    _fresh_env(data_dir)
    if args.agent_policy:  # the agent and the judge read it: acceptance stays comparable
        os.environ["BRANDLOOP_AGENT_POLICY"] = str(Path(args.agent_policy).resolve())
    settings = get_settings()
    world = sim_world.World(seed, size=args.size)
    specs = sim_world.specs()
    by_id = {s.id: s for s in specs}
    db = Database.from_settings(settings)
    with db.session() as session:
        template = resolve_template(session, tenant="default", ref=None, request_id="bench")
        kits = {}
        for path, _ in jobs_spec:
            if path not in kits:
                kits[path] = load_brand_kit(ROOT / "examples" / "brands" / path)
                crud.upsert_brand(session, tenant="default", kit=kits[path])
    jobs = [Job(kits[path], brief) for path, brief in jobs_spec]
    judge = Judge()
    tallies: dict[str, Tally] = {}

    ids = [s.id for s in specs]
    cheapest = min(specs, key=lambda s: s.price_per_image_usd).id
    claimed = max(specs, key=lambda s: s.quality_baseline).id
    variants = [("", False)] + ([(" [strong prompt]", True)] if args.strong_baselines else [])
    for suffix, strong in variants:
        for name, loop in loops(ids, cheapest, claimed, args.n, args.k).items():
            session = world.session()
            tally = Tally()
            for job in jobs:
                prompts = {
                    m: baseline_prompt(job, template, by_id[m], strong=strong, size=args.size)
                    for m in ids
                }
                before = session.ledger.dollars
                ok = loop(session, job, prompts, judge, args.size)
                tally.add(session.ledger.dollars - before, ok)
            tallies[name + suffix] = tally

    def allow(_data: bytes) -> ModerationVerdict:
        return ModerationVerdict(allowed=True, source="image", reasons=["benchmark"])

    class VendorB(OpenAIImagesProvider):
        name = "vendorb"

    session = world.session()
    clients = {p: httpx.AsyncClient(transport=session.transport(p)) for p in ("openai", "vendorb")}
    providers = {
        "openai": OpenAIImagesProvider(
            clients["openai"], api_key="sk-sim-0001", base_url="http://sim/v1", models=specs
        ),
        "vendorb": VendorB(
            clients["vendorb"], api_key="sk-sim-0002", base_url="http://sim/v1", models=specs
        ),
    }
    tally = Tally()
    max_price = max(p for s in specs for p in s.prices.values() if p <= 0.05)
    for index, job in enumerate(jobs):
        before = session.ledger.dollars
        result = await run_generation(
            GenerationRequest(
                brief=job.brief,
                brand=job.kit.name,
                count=1,
                size=f"{args.size}x{args.size}",
                seed=index,
                budget_usd=round(args.n * max_price, 4),
            ),
            settings=settings,
            db=db,
            providers=providers,  # type: ignore[arg-type]
            use_memory=args.memory,
            models=specs,
            image_moderator=allow,
        )
        tally.add(session.ledger.dollars - before, bool(result.images))
        if os.environ.get("AGENT_VALUE_TRACE"):
            actions = " > ".join(f"{d.node}:{d.action}" for d in result.decisions)
            sys.stderr.write(
                f"{index:3d} {result.status:9s} ${session.ledger.dollars - before:.3f} "
                f"{job.brief[:50]!r}\n    {actions}\n    {result.reason}\n"
            )
    for client in clients.values():
        await client.aclose()
    tallies["agent"] = tally
    shutil.rmtree(data_dir, ignore_errors=True)
    return tallies


def request_mix(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Each brief once, then a seeded draw; every brief is new (a repeat could be served from
    the cache, which would flatter the agent)."""
    rng = random.Random(args.seed)
    jobs_spec = []
    for index in range(args.requests):
        path, brief = BRIEFS[index] if index < len(BRIEFS) else rng.choice(BRIEFS)
        jobs_spec.append((path, f"{brief}, shot {index + 1} of the series"))
    return jobs_spec


def world_in_subprocess(seed: int, args: argparse.Namespace, mix_seed: int) -> dict[str, Tally]:
    """Each world in its own process: its own data dir, registry, memory and settings."""
    argv = [sys.executable, __file__, "--one-world", str(seed), "--requests", str(args.requests)]
    argv += ["--n", str(args.n), "--k", str(args.k), "--size", str(args.size)]
    argv += ["--seed", str(mix_seed)]
    argv += [] if args.memory else ["--no-memory"]
    argv += ["--strong-baselines"] if args.strong_baselines else []
    argv += ["--agent-policy", args.agent_policy] if args.agent_policy else []
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    raw = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: Tally(costs=c, accepted=a) for name, (c, a) in raw.items()}


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:.3f}"


def pooled(runs: list[dict[str, Tally]]) -> dict[str, Tally]:
    """One world's tallies over several request mixes: every method's requests together."""
    return {
        name: Tally(
            costs=[c for run in runs for c in run[name].costs],
            accepted=[a for run in runs for a in run[name].accepted],
        )
        for name in runs[0]
    }


def print_header() -> None:
    print(
        "| world | best hand-written loop (hindsight) | its accepted/$ | agent accepted/$ | "
        "ratio | agent accepted | agent $/accepted | agent failed: mean / max $ | "
        "agent success median $ |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")


def print_row(world: int, tallies: dict[str, Tally], verbose: bool) -> tuple[float, bool]:
    """One world's row; its ratio, and whether failed requests cost no more than the median
    successful one."""
    tallies = dict(tallies)
    agent = tallies.pop("agent")
    best_name, best = max(tallies.items(), key=lambda item: item[1].per_dollar)
    ratio = agent.per_dollar / best.per_dollar if best.per_dollar else float("inf")
    mean_failed, max_failed, median_good = agent.failed_vs_median_success()
    failed_ok = mean_failed is None or median_good is None or mean_failed <= median_good
    print(
        f"| {world} | {best_name} | {best.per_dollar:.1f} | {agent.per_dollar:.1f} | "
        f"{ratio:.2f}x | {sum(agent.accepted)}/{len(agent.accepted)} | "
        f"{_money(agent.per_image)} | {_money(mean_failed)} / {_money(max_failed)} | "
        f"{_money(median_good)} |",
        flush=True,
    )
    if verbose:
        for name, tally in sorted(tallies.items(), key=lambda i: -i[1].per_dollar):
            print(
                f"|   | {name} | {tally.per_dollar:.1f} | | | "
                f"{sum(tally.accepted)}/{len(tally.accepted)} | {_money(tally.per_image)} | | |"
            )
    return ratio, failed_ok


def print_summary(rows: list[tuple[float, bool]]) -> None:
    ratios = [ratio for ratio, _ in rows]
    print()
    print(
        f"agent / best hand-written loop: mean {statistics.mean(ratios):.2f}x (target >= 1.5x), "
        f"worst {min(ratios):.2f}x (target >= 1.0x)"
    )
    print(
        "requests with nothing accepted cost no more than the median successful request "
        f"(mean per world): {'yes' if all(ok for _, ok in rows) else 'no'}"
    )


def seed_list(text: str) -> list[int]:
    """``--seeds 7,8,9``: distinct whole numbers, at least one."""
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated seeds such as 7,8,9, got {text!r}"
        )
    if len(set(parts)) != len(parts):
        raise argparse.ArgumentTypeError(f"a seed is repeated in {text!r}")
    return [int(p) for p in parts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=5)
    parser.add_argument("--first-world", type=int, default=1)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--n", type=int, default=4, help="most images a hand-written loop buys")
    parser.add_argument("--k", type=int, default=2, help="escalation: tries on the cheap model")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=7, help="seed of the request mix")
    parser.add_argument(
        "--seeds",
        type=seed_list,
        default=None,
        help="comma-separated request-mix seeds, pooled (default: --seed)",
    )
    parser.add_argument("--no-memory", dest="memory", action="store_false")
    parser.add_argument("--strong-baselines", action="store_true")
    parser.add_argument(
        "--agent-policy", default=None, help="an agent policy file instead of the shipped one"
    )
    parser.add_argument("--verbose", action="store_true", help="every method of every world")
    parser.add_argument("--one-world", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    jobs_spec = request_mix(args)
    if args.one_world is not None:  # a child process: one world, tallies as JSON
        tallies = asyncio.run(run_world(args.one_world, args, jobs_spec))
        sys.stdout.write(json.dumps({k: [t.costs, t.accepted] for k, t in tallies.items()}))
        return

    print(
        f"worlds={args.worlds} requests={args.requests} n={args.n} k={args.k} "
        f"size={args.size} memory={'on' if args.memory else 'off'}"
    )
    print()
    seeds = args.seeds or [args.seed]
    worlds = range(args.first_world, args.first_world + args.worlds)
    runs: dict[int, list[dict[str, Tally]]] = {world: [] for world in worlds}
    for mix_seed in seeds:
        if len(seeds) > 1:
            print(f"request-mix seed {mix_seed}:")
            print()
        print_header()
        rows = []
        for world in worlds:
            runs[world].append(world_in_subprocess(world, args, mix_seed))
            rows.append(print_row(world, runs[world][-1], args.verbose))
        print_summary(rows)
        if len(seeds) > 1:
            print()
    if len(seeds) > 1:
        print(
            f"pooled over request-mix seeds {','.join(map(str, seeds))} (per method: accepted / $):"
        )
        print()
        print_header()
        print_summary([print_row(world, pooled(runs[world]), args.verbose) for world in worlds])


if __name__ == "__main__":
    main()
