"""The score node in real runs: near-duplicates within a set are rejected (and diagnosed as
such), and a brand's second run is compared with the images its first run accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandloop.agent.runner import run_generation
from brandloop.domain import GenerationRequest
from brandloop.policies.brandkit import load_brand_kit
from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from brandloop.tools.providers.procedural import ProceduralProvider

BRIEF = "strict palette: teal #0f766e, cream #fef3c7, espresso #4a2c2a; a coffee cup"


class OneSeedProvider:
    """A backend that ignores the seed: every image of one prompt is the same picture."""

    name = "procedural"

    def __init__(self) -> None:
        self.inner = ProceduralProvider()

    async def generate(self, request: ImageRequest) -> ImageResult:
        result = await self.inner.generate(request.model_copy(update={"seed": 1}))
        first = result.images[0]
        return result.model_copy(update={"images": [first for _ in result.images]})


@pytest.fixture
def acme(settings: Settings, db: Database, acme_kit_path: Path) -> str:
    with db.session() as session:
        crud.upsert_brand(session, tenant="default", kit=load_brand_kit(acme_kit_path))
    return "Acme Coffee"


async def test_copies_of_one_image_are_rejected_as_duplicates(settings, db: Database, acme, seed):
    request = GenerationRequest(
        brief=BRIEF, brand=acme, count=2, size="256x256", seed=seed, budget_usd=0.3,
        model="procedural/studio",
    )  # fmt: skip
    result = await run_generation(
        request,
        settings=settings,
        db=db,
        providers={"procedural": OneSeedProvider()},
        use_memory=False,
    )
    actions = [d.action for d in result.decisions]
    assert "new_seeds_variant" in actions, actions
    with db.session() as session:
        rows = crud.list_attempts(session, run_id=result.run_id)
    first_round = [r for r in rows if r.iteration == 1]
    assert sorted(r.outcome for r in first_round) == ["accepted", "rejected"]
    (copy,) = [r for r in first_round if r.outcome == "rejected"]
    duplicate = copy.scores["signals"]["duplicate"]
    assert not duplicate["passed"] and "near-duplicate" in duplicate["explanation"]
    # a backend that ignores the seed makes the same picture again whatever the wording
    # (no phrase is special to the renderer): one distinct image, never two copies
    assert result.status == "partial" and len({i.sha256 for i in result.images}) == 1


async def test_a_second_run_is_compared_with_the_brands_accepted_images(
    settings, db: Database, acme, seed
):
    request = GenerationRequest(
        brief=BRIEF, brand=acme, count=1, size="256x256", seed=seed, budget_usd=1.0,
        model="procedural/studio",
    )  # fmt: skip
    first = await run_generation(request, settings=settings, db=db)
    assert first.images and "similarity" not in first.images[0].scores
    second = await run_generation(
        request.model_copy(update={"seed": (seed + 1) % 2**32}), settings=settings, db=db
    )
    assert second.images
    assert second.images[0].scores["similarity"] >= 0.5


class BrokenProvider:
    """A backend that answers with a truncated PNG."""

    name = "procedural"

    def __init__(self) -> None:
        self.inner = ProceduralProvider()

    async def generate(self, request: ImageRequest) -> ImageResult:
        result = await self.inner.generate(request)
        images = [i.model_copy(update={"data": i.data[: len(i.data) // 3]}) for i in result.images]
        return result.model_copy(update={"images": images})


async def test_an_unreadable_image_is_an_error_not_a_crash_or_a_safety_block(
    settings, db: Database, acme, seed
):
    request = GenerationRequest(
        brief=BRIEF, brand=acme, count=1, size="256x256", seed=seed, budget_usd=0.2,
        model="procedural/studio",
    )  # fmt: skip
    result = await run_generation(
        request,
        settings=settings,
        db=db,
        providers={"procedural": BrokenProvider()},
        use_memory=False,
    )
    assert result.status == "failed" and not result.images
    with db.session() as session:
        rows = crud.list_attempts(session, run_id=result.run_id)
    assert rows and all(r.outcome == "error" for r in rows)
    assert all("truncated" in (r.error or "") for r in rows)
    assert "safety_rewrite" not in [d.action for d in result.decisions]
