"""Campaign consistency with brand memory on versus off.

Runs the five-asset campaign ``examples/campaigns/acme-autumn.yaml`` through the real agent,
once with memory and once without, in fresh data dirs, for several campaign seeds; reports the
palette spread (mean pairwise total-variation distance of the images' brand-colour
distributions, 0..1) and the descriptor spread (mean ΔE2000 of each image's mean colour to the
set's), lower being more consistent (see ``agent/consistency.py``). Usage:

    .venv/bin/python benchmarks/campaign_consistency.py [--seeds 7 11 23] [--size 384x384]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 23, 42, 99])
    parser.add_argument(
        "--size", default="384x384", help="every asset at this size ('' keeps the file's)"
    )
    parser.add_argument("--campaign", default=str(ROOT / "examples/campaigns/acme-autumn.yaml"))
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith("BRANDLOOP_")]:
        del os.environ[key]

    from brandloop.agent.campaign import load_campaign, resolve_brand, run_campaign
    from brandloop.domain import ModerationVerdict
    from brandloop.registry.db import Database
    from brandloop.settings import get_settings

    def allow(_data: bytes) -> ModerationVerdict:
        return ModerationVerdict(allowed=True, source="image", reasons=["benchmark"])

    path = Path(args.campaign)
    rows = []
    for seed in args.seeds:
        for memory in (False, True):
            os.environ["BRANDLOOP_DATA_DIR"] = tempfile.mkdtemp(prefix="bl-camp-")
            get_settings.cache_clear()
            settings = get_settings()
            db = Database.from_settings(settings)
            spec = load_campaign(path)
            updates: dict[str, object] = {"seed": seed}
            if args.size:
                updates["assets"] = [
                    a.model_copy(update={"formats": [args.size]}) for a in spec.assets
                ]
            spec = spec.model_copy(update=updates)
            brand = resolve_brand(spec, path.resolve().parent, db=db, tenant="default")
            report = asyncio.run(
                run_campaign(
                    spec,
                    brand=brand,
                    settings=settings,
                    db=db,
                    campaign_id=f"bench-{seed}",
                    use_memory=memory,
                    run_kwargs={"image_moderator": allow},
                )
            )
            rows.append((seed, memory, report))

    print(
        f"campaign={path.name} assets={len(load_campaign(path).assets)} size={args.size or 'as in file'}"
    )
    print()
    print("| seed | memory | accepted | cost | palette spread | descriptor spread (ΔE) |")
    print("|---:|---|---:|---:|---:|---:|")
    for seed, memory, r in rows:
        print(
            f"| {seed} | {'on' if memory else 'off'} | {r.accepted}/{r.wanted} | ${r.cost_usd:.3f} | "
            f"{_figure(r.palette_spread, 3)} | {_figure(r.descriptor_spread, 2)} |"
        )
    for memory in (False, True):
        picked = [r for _s, m, r in rows if m == memory]
        palettes = [r.palette_spread for r in picked if r.palette_spread is not None]
        casts = [r.descriptor_spread for r in picked if r.descriptor_spread is not None]
        print(
            f"mean, memory {'on ' if memory else 'off'} ({len(palettes)} of {len(picked)} "
            f"seeds measured): palette spread "
            f"{_figure(statistics.mean(palettes) if palettes else None, 3)}, descriptor spread "
            f"{_figure(statistics.mean(casts) if casts else None, 2)}, cost "
            f"${statistics.mean(r.cost_usd for r in picked):.3f}"
        )
    pairs = [
        (
            next(r for s, m, r in rows if s == seed and m).palette_spread,
            next(r for s, m, r in rows if s == seed and not m).palette_spread,
        )
        for seed in args.seeds
    ]
    measured = [(on, off) for on, off in pairs if on is not None and off is not None]
    lower = sum(1 for on, off in measured if on < off)
    print(
        f"palette spread lower with memory in {lower} of {len(measured)} seeds measured "
        f"({len(args.seeds)} run)"
    )


def _figure(value: float | None, places: int) -> str:
    """A spread, or "not measured" (fewer than two accepted images), never a perfect 0."""
    return "not measured" if value is None else f"{value:.{places}f}"


if __name__ == "__main__":
    main()
