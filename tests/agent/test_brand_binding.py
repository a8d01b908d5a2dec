"""Work is bound to its brand's id when it is admitted and finds the brand's kit by that id at
every later step (docs/http-api.md, Campaigns; docs/agent.md, Campaigns): a brand renamed
meanwhile - and another brand given its old name - never moves the work to the other brand's
kit (outside tester: `brandloop campaign run` ran the first asset under Acme Brew and the rest
under the Nordlys kit that took its name, and reported every asset as Acme Brew's; a run
recorded under one brand was made by intake with the other's kit)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.runtime import Runtime

from brandloop.agent.campaign import AssetResult, load_campaign, run_campaign
from brandloop.agent.nodes.intake import intake
from brandloop.agent.runner import build_context, new_run_id, run_generation
from brandloop.domain import GenerationRequest
from brandloop.errors import NotFoundError
from brandloop.policies.brandkit import load_brand_kit
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.registry.models import BrandRow
from brandloop.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ACME_TEAL, BLOOM_BLUSH = "#0f766e", "#f9a8d4"  # each kit's primary colour, in every prompt


def _add(db: Database, kit: str) -> str:
    """Store an example brand kit; its id."""
    with db.session() as session:
        return crud.upsert_brand(
            session, tenant="default", kit=load_brand_kit(ROOT / f"examples/brands/{kit}.yaml")
        ).id


def _swap(db: Database, *, acme: str, bloom: str) -> None:
    """Rename Acme Coffee to Acme Roast, then give Bloom Skincare the name Acme Coffee."""
    with db.session() as session:
        crud.rename_brand(session, tenant="default", ref=acme, name="Acme Roast")
        crud.rename_brand(session, tenant="default", ref=bloom, name="Acme Coffee")
        session.commit()


def _prompts(db: Database, run_id: str) -> list[str]:
    with db.session() as session:
        return [a.prompt for a in crud.list_attempts(session, run_id=run_id)]


def _run_brand(db: Database, run_id: str) -> tuple[str | None, str]:
    with db.session() as session:
        run = crud.get_run(session, tenant="default", run_id=run_id)
        assert run is not None
        return run.brand_id, run.brand_name


@pytest.fixture
def brands(db: Database) -> tuple[str, str]:
    return _add(db, "acme-coffee"), _add(db, "bloom-skincare")


async def test_a_run_bound_before_a_rename_swap_runs_under_its_brand_by_its_new_name(
    settings: Settings, db: Database, brands: tuple[str, str], seed: int
) -> None:
    """A job's request read before the renames (its old name, its brand's id): the run is
    recorded under its brand, made with its kit, and says the brand's name now."""
    acme, bloom = brands
    request = GenerationRequest(
        brief="a steaming coffee cup on an oak table",
        brand="Acme Coffee",
        brand_id=acme,
        size="128x128",
        seed=seed,
        budget_usd=1.0,
    )
    _swap(db, acme=acme, bloom=bloom)
    result = await run_generation(request, settings=settings, db=db, use_memory=False)
    assert result.brand == "Acme Roast", result.reason
    assert _run_brand(db, result.run_id) == (acme, "Acme Roast")
    prompts = _prompts(db, result.run_id)
    assert prompts and all(ACME_TEAL in p and BLOOM_BLUSH not in p for p in prompts)


async def test_intake_loads_the_kit_of_the_brand_the_run_is_bound_to(
    settings: Settings, db: Database, brands: tuple[str, str]
) -> None:
    """Intake, the last step that looked the brand up by name: a rename swap after the run
    was stored (and bound) leaves it with its own brand's kit, not the namesake's."""
    acme, bloom = brands
    request = GenerationRequest(brief="a coffee cup", brand="Acme Coffee", brand_id=acme)
    ctx = build_context(settings, db, request, use_memory=False)
    run_id = new_run_id()
    with db.session() as session:  # stored as the runner stores it, then the swap
        crud.create_run(
            session,
            run_id=run_id,
            tenant="default",
            brand_id=acme,
            brand_name="Acme Coffee",
            brief=request.brief,
            request=request.model_dump(mode="json"),
        )
    _swap(db, acme=acme, bloom=bloom)
    update = await intake({"run_id": run_id, "request": request}, Runtime(context=ctx))
    assert update["brand_id"] == acme
    assert (update["brand"].name, update["brand"].palette[0].hex) == ("Acme Roast", ACME_TEAL)


async def test_a_run_whose_bound_brand_was_removed_is_refused_not_run_under_its_namesake(
    settings: Settings, db: Database, brands: tuple[str, str]
) -> None:
    acme, bloom = brands
    request = GenerationRequest(brief="a coffee cup", brand="Acme Coffee", brand_id=acme)
    with db.session() as session:
        session.delete(session.get(BrandRow, acme))
        crud.rename_brand(session, tenant="default", ref=bloom, name="Acme Coffee")
        session.commit()
    with pytest.raises(NotFoundError, match=rf"'Acme Coffee' \({acme}\) was removed"):
        await run_generation(request, settings=settings, db=db, use_memory=False)


async def test_a_cli_campaign_keeps_its_brand_when_it_is_renamed_between_assets(
    settings: Settings, db: Database, brands: tuple[str, str], tmp_path: Path, seed: int
) -> None:
    """`brandloop campaign run`'s scenario: after the first asset, the brand is renamed and
    another brand takes its name; the later assets still run under the campaign's brand,
    with its kit, and the report names it as it is called now."""
    acme, bloom = brands
    path = tmp_path / "camp.yaml"
    path.write_text(
        f"name: swap\nbrand: Acme Coffee\nseed: {seed}\n"
        'defaults: {formats: ["128x128"], count: 1, budget_usd: 0.3}\n'
        "assets:\n"
        '  - {id: a, brief: "a steaming coffee cup on an oak table"}\n'
        '  - {id: b, brief: "a coffee cup with a cinnamon pastry"}\n'
        '  - {id: c, brief: "latte art in a coffee cup, warm light"}\n'
    )
    finished: list[AssetResult] = []

    def after(asset: AssetResult) -> None:
        finished.append(asset)
        if len(finished) == 1:
            _swap(db, acme=acme, bloom=bloom)

    report = await run_campaign(
        load_campaign(path),
        brand="Acme Coffee",
        settings=settings,
        db=db,
        campaign_id="swap-1",
        use_memory=False,
        on_asset=after,
    )
    assert report.brand == "Acme Roast"
    assert [a.asset for a in report.assets] == ["a", "b", "c"]
    for asset in report.assets:
        assert _run_brand(db, asset.run_id)[0] == acme, asset
        prompts = _prompts(db, asset.run_id)
        assert prompts and all(ACME_TEAL in p and BLOOM_BLUSH not in p for p in prompts), asset
    assert [_run_brand(db, a.run_id)[1] for a in report.assets] == [
        "Acme Coffee",
        "Acme Roast",
        "Acme Roast",
    ]
