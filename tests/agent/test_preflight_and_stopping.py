"""Pre-flight conflict check (adapt / ask / refuse as recorded decisions), the stopping rule,
and repairs that never repeat after failing twice on the same signal."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brandloop.agent.conflicts import find_conflicts
from brandloop.agent.runner import run_generation
from brandloop.domain import GenerationRequest
from brandloop.policies.brandkit import load_brand_kit
from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from brandloop.tools.composer import off_brand_colours
from brandloop.tools.providers.procedural import ProceduralProvider
from tests.agent.helpers import ROOT, CountingProvider, add_acme, allow

PASTEL = "Spring menu card, pastel pink and lavender, airy and light, a coffee cup with a pastry"


def _brand_policy(settings: Settings, slug: str, text: str) -> None:
    folder = settings.data_dir / "policies"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{slug}.yaml").write_text(text, encoding="utf-8")


def _request(brand: str, brief: str = PASTEL, **extra: object) -> GenerationRequest:
    fields: dict[str, object] = {"size": "256x256", "seed": 5, "budget_usd": 0.5}
    fields.update(extra)
    return GenerationRequest(brief=brief, brand=brand, **fields)  # type: ignore[arg-type]


def test_conflicts_name_off_palette_and_forbidden_colours_by_delta_e() -> None:
    acme = load_brand_kit(ROOT / "examples/brands/acme-coffee.yaml")
    nordlys = load_brand_kit(ROOT / "examples/brands/nordlys-outdoor.yaml")
    found = find_conflicts(PASTEL + ", magenta glow", acme, width=1024, height=1024)
    assert [c.label for c in found.off_palette] == ["pink", "lavender"]
    assert [c.label for c in found.forbidden] == ["magenta"]  # acme forbids #ff00ff
    assert found.format is None
    assert find_conflicts("a teal cup on cream", acme, width=1024, height=1024).off_palette == []
    odd = find_conflicts("a cup", acme, width=1000, height=300)
    assert odd.format is not None and "1200x628" in odd.format
    # the brand's own colour name is never off-palette, however far the word's usual meaning
    assert find_conflicts("a navy jacket", nordlys, width=1024, height=1024).off_palette == []
    assert off_brand_colours("navy jacket under a pink sky", nordlys) == ["pink"]


async def test_adapt_keeps_the_palette_dominant_and_says_so(
    settings: Settings, db: Database
) -> None:
    brand = add_acme(settings, db)
    provider = CountingProvider()
    result = await run_generation(
        _request(brand),
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
    )
    (adapt,) = [d for d in result.decisions if d.node == "preflight"]
    assert adapt.action == "adapt"
    assert "pink, lavender become accents" in adapt.reason and "at most 25%" in adapt.reason
    first = provider.calls[0].prompt
    assert first.startswith("mostly the brand colours teal #0f766e")
    assert first.index("#0f766e") < first.index("pink")  # the palette comes first
    with db.session() as session:
        rows = crud.list_attempts(session, run_id=result.run_id)
    assert max(r.iteration for r in rows) <= 2, "accepts or stops within two rounds"
    assert result.status in ("succeeded", "failed")
    if result.images:
        accepted = [r for r in rows if r.outcome == "accepted"]
        explanation = accepted[0].scores["signals"]["palette"]["explanation"]
        assert "brief accents cover" in explanation


@pytest.mark.parametrize("choice", ["ask", "refuse"])
async def test_ask_and_refuse_spend_nothing(settings: Settings, db: Database, choice: str) -> None:
    brand = add_acme(settings, db)
    _brand_policy(settings, "acme-coffee", f"conflicts: {choice}\n")
    provider = CountingProvider()
    result = await run_generation(
        _request(brand),
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
    )
    assert provider.calls == [] and result.cost_usd == 0 and result.attempts == 0
    assert result.status == "refused"
    (decision,) = [d for d in result.decisions if d.node == "preflight"]
    assert decision.action == ("ask" if choice == "ask" else "refuse_conflict")
    assert "pink" in result.reason and "lavender" in result.reason
    if choice == "ask":
        assert result.clarification is not None and result.clarification.endswith("?")
    else:
        assert result.clarification is None
    # a brief without a conflict is not held up by the policy
    calm = await run_generation(
        _request(brand, brief="a teal coffee cup on a cream table"),
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
    )
    assert calm.status != "refused" and provider.calls


def test_a_bad_conflict_policy_is_a_clear_error(settings: Settings, db: Database) -> None:
    from brandloop.errors import BadInputError
    from brandloop.policies.brand_policy import load_brand_run_policy

    _brand_policy(settings, "acme-coffee", "conflicts: maybe\n")
    with pytest.raises(BadInputError, match="conflicts"):
        load_brand_run_policy("acme-coffee", search=[settings.data_dir / "policies"])


def _magenta_half(png: bytes) -> bytes:
    with Image.open(io.BytesIO(png)) as source:
        pixels = np.asarray(source.convert("RGB")).copy()
    pixels[: pixels.shape[0] // 2] = (255, 0, 255)  # Acme Coffee forbids #ff00ff
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


class AlwaysAccented:
    """A backend whose every image is half magenta, a colour the brand forbids: no repair (no
    wording, no seed, no tier) can fix it."""

    name = "procedural"

    def __init__(self) -> None:
        self.inner = ProceduralProvider()
        self.calls: list[ImageRequest] = []

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.calls.append(request)
        result = await self.inner.generate(request)
        images = [i.model_copy(update={"data": _magenta_half(i.data)}) for i in result.images]
        return result.model_copy(update={"images": images})


async def test_a_hopeless_run_stops_unpromising_with_its_cause(
    settings: Settings, db: Database
) -> None:
    brand = add_acme(settings, db)
    provider = AlwaysAccented()
    result = await run_generation(
        _request(brand, brief="a teal coffee cup on a cream table", model="procedural/studio"),
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
        image_moderator=allow,
    )
    assert result.status == "failed" and not result.images
    assert result.stop_cause == "unpromising"
    stop = result.decisions[-1]
    assert stop.action == "stop_unpromising", [d.action for d in result.decisions]
    assert "palette" in result.reason
    rounds = len({c.prompt + str(c.seed) for c in provider.calls})
    assert rounds < 4, "stopped before the round cap"
    with db.session() as session:
        events = crud.list_events(session, run_id=result.run_id)
    outcomes = [e.payload for e in events if e.kind == "repair_outcome"]
    assert outcomes and all(o["fixed"] is False for o in outcomes)
    failed_per_repair: dict[tuple[str, str], int] = {}
    for o in outcomes:
        key = (o["action"], o["signal"])
        failed_per_repair[key] = failed_per_repair.get(key, 0) + 1
    assert max(failed_per_repair.values()) <= 2, failed_per_repair


async def test_the_stopping_rule_uses_the_brands_median_and_fix_rates(
    settings: Settings, db: Database
) -> None:
    brand = add_acme(settings, db)
    provider = AlwaysAccented()
    for seed in (1, 2):
        await run_generation(
            _request(brand, brief="a teal coffee cup", seed=seed, model="procedural/studio"),
            settings=settings,
            db=db,
            providers={"procedural": provider},
            use_memory=False,
            image_moderator=allow,
        )
    from brandloop.agent.repairs import fix_rates

    with db.session() as session:
        row = crud.get_brand(session, tenant="default", ref=brand)
        assert row is not None
        rates = fix_rates(session, tenant="default", brand_id=row.id)
    palette = [r for r in rates if r.signal == "palette"]
    assert palette and all(r.fixed == 0 and r.tried >= 1 for r in palette)
    # with that record a third hopeless request gives up sooner: one round, not two or three
    provider.calls.clear()
    third = await run_generation(
        _request(brand, brief="a teal coffee cup", seed=3, model="procedural/studio"),
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
        image_moderator=allow,
    )
    assert third.stop_cause == "unpromising"
    assert "fix rate" in third.reason or "P(accept)" in third.reason
    assert len(provider.calls) <= 2


def test_brand_policy_files_are_found_in_the_data_dir(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    from brandloop.policies.brand_policy import load_brand_run_policy

    assert load_brand_run_policy("acme-coffee").conflicts == "adapt"
    _brand_policy(settings, "acme-coffee", "conflicts: refuse\nproviders: [openai]\n")
    policy = load_brand_run_policy("acme-coffee", search=[settings.data_dir / "policies"])
    assert policy.conflicts == "refuse" and policy.providers == ["openai"]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from brandloop.api.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


async def test_runs_stats_shows_the_fix_rate_per_action_and_model(
    settings: Settings, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    brand = add_acme(settings, db)
    code, out, _ = run_cli(capsys, "runs", "stats", "--json")
    assert code == 0 and json.loads(out)["rows"] == []
    code, out, _ = run_cli(capsys, "runs", "stats")
    assert "not measured" in out
    await run_generation(
        _request(brand, brief="a teal coffee cup", model="procedural/studio"),
        settings=settings,
        db=db,
        providers={"procedural": AlwaysAccented()},
        use_memory=False,
        image_moderator=allow,
    )
    code, out, _ = run_cli(capsys, "runs", "stats", "--brand", brand, "--json")
    report = json.loads(out)
    assert code == 0 and report["brand"] == "Acme Coffee"
    palette = [r for r in report["by_action"] if r["signal"] == "palette"]
    assert palette and all(r["fix_rate"] == 0.0 and r["tried"] >= 1 for r in palette)
    assert [r["model"] for r in report["by_model"]] == ["procedural/studio"]
    code, out, _ = run_cli(capsys, "runs", "stats", "--brand", brand)
    assert code == 0 and "Fix rate per repair" in out and "strengthen_palette" in out
    code, _, err = run_cli(capsys, "runs", "stats", "--brand", "No Such Brand")
    assert code == 2 and "unknown brand" in err and err.count("\n") == 1


def _finished_run(
    db: Database, *, tenant: str, brand_id: str, cost: float, accepted: int, done: bool = True
) -> None:
    with db.session() as session:
        run_id = crud.new_id("run")
        crud.create_run(
            session,
            run_id=run_id,
            tenant=tenant,
            brand_id=brand_id,
            brand_name="Acme Coffee",
            brief="a cup",
            request={},
        )
        if done:
            crud.finish_run(
                session,
                run_id=run_id,
                status="succeeded" if accepted else "failed",
                reason="",
                template_ref="t@1",
                cost_usd=cost,
                attempt_count=1,
                accepted_count=accepted,
                result={},
            )


def test_what_an_accepted_image_costs_counts_the_failed_runs_too(
    settings: Settings, db: Database
) -> None:
    """The cap's reference is spend over accepted images across the brand's finished paid runs:
    a median over the successful runs alone would say $0.005 here, where an accepted image has
    really cost $0.020 (one success in four tries)."""
    from brandloop.agent.stopping import cost_per_accepted_image

    brand = add_acme(settings, db)
    with db.session() as session:
        row = crud.get_brand(session, tenant="default", ref=brand)
        assert row is not None
        brand_id = row.id
        assert cost_per_accepted_image(session, tenant="default", brand_id=brand_id) is None
    for accepted in (1, 0, 0, 0):
        _finished_run(db, tenant="default", brand_id=brand_id, cost=0.005, accepted=accepted)
    _finished_run(db, tenant="default", brand_id=brand_id, cost=0.0, accepted=1)  # cache replay
    _finished_run(db, tenant="default", brand_id=brand_id, cost=0.9, accepted=0, done=False)
    _finished_run(db, tenant="other", brand_id=brand_id, cost=0.9, accepted=1)  # not this tenant
    with db.session() as session:
        usual = cost_per_accepted_image(session, tenant="default", brand_id=brand_id)
    assert usual == pytest.approx(0.020)


def test_a_signal_another_repair_failed_to_fix_lowers_the_next_repairs_chance() -> None:
    from brandloop.agent.state import Repair
    from brandloop.agent.stopping import OTHER_REPAIR_FAILED, REPAIR_PRIOR, outlook

    def repair(action: str, signal: str, fixed: bool | None) -> Repair:
        return Repair(action=action, signal=signal, round=0, model="m", fixed=fixed)

    pending = [repair("upgrade_tier", "sharpness", None)]

    def ahead(history: list[Repair]) -> float:
        return outlook(
            model="m",
            posterior_mean=0.6,
            price=0.01,
            pending=pending,
            history=history,
            rates=[],
            cap=1.0,
            cap_source="test",
        ).p_accept

    fresh = ahead([])
    # new seeds did not fix the soft image, twice; a palette repair that failed does not count
    history = [
        repair("new_seeds", "sharpness", False),
        repair("new_seeds", "sharpness", False),
        repair("strengthen_palette", "palette", False),
    ]
    assert fresh == pytest.approx(0.6 * REPAIR_PRIOR)
    assert ahead(history) == pytest.approx(0.6 * REPAIR_PRIOR * OTHER_REPAIR_FAILED**2)
    # the same repair failing again still halves it
    again = ahead([repair("upgrade_tier", "sharpness", False)])
    assert again == pytest.approx(0.6 * REPAIR_PRIOR * 0.5)
