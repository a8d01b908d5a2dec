"""Whole runs through the real graph: procedural provider, SQLite registry, Chroma memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandloop.agent.runner import run_generation
from brandloop.domain import GenerationRequest
from brandloop.errors import BadInputError, NotFoundError
from brandloop.policies.brandkit import load_brand_kit
from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.backends import steady_procedural

AUTUMN = (
    (Path(__file__).resolve().parents[2] / "examples" / "briefs" / "autumn-sale.txt")
    .read_text()
    .strip()
)


class CountingProvider:
    """The procedural provider behind a call counter: what a paid backend's ledger would show."""

    name = "procedural"

    def __init__(self) -> None:
        self.inner = steady_procedural()
        self.calls: list[ImageRequest] = []

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.calls.append(request)
        return await self.inner.generate(request)


@pytest.fixture
def acme(settings: Settings, db: Database, acme_kit_path: Path) -> str:
    with db.session() as session:
        crud.upsert_brand(session, tenant="default", kit=load_brand_kit(acme_kit_path))
    return "Acme Coffee"


class OffPaletteFirstProvider(CountingProvider):
    """A backend whose first answer ignores the colours asked for (it renders neon green and
    magenta instead), then follows the prompt: a palette miss on every seed."""

    async def generate(self, request: ImageRequest) -> ImageResult:
        if not self.calls:
            self.calls.append(request)
            ignored = request.model_copy(update={"prompt": "neon green and magenta shapes"})
            return await self.inner.generate(ignored)
        return await super().generate(request)


async def test_a_run_replans_after_a_palette_miss_and_says_why(
    settings: Settings, db: Database, acme: str, seed: int
) -> None:
    provider = OffPaletteFirstProvider()
    request = GenerationRequest(
        brief=AUTUMN, brand=acme, count=2, size="256x256", seed=seed, budget_usd=1.0
    )
    result = await run_generation(
        request, settings=settings, db=db, providers={"procedural": provider}
    )
    actions = [d.action for d in result.decisions]
    assert "strengthen_palette" in actions, actions
    reason = next(d for d in result.decisions if d.action == "strengthen_palette")
    # the signal is the mean over the round's rejected images, some of which may have failed
    # only another signal; the count of palette misses is what the decision is about
    missed = int(reason.reason.split()[0])
    assert missed >= 1 and "missed the brand palette" in reason.reason
    assert reason.signals["palette"] < 1.0
    assert result.status in {"succeeded", "partial"}
    assert result.images, "the replanned round should produce accepted images"
    assert all(img.scores["palette"] >= 0.5 for img in result.images)
    assert result.cost_usd == pytest.approx(
        sum(0.01 if c.model == "draft" else 0.04 for c in provider.calls)
    )
    with db.session() as session:
        events = crud.list_events(session, run_id=result.run_id)
        assert any(
            e.kind == "decision" and e.payload["action"] == "strengthen_palette" for e in events
        )
        run = crud.get_run(session, tenant="default", run_id=result.run_id)
        assert run is not None and run.status == result.status


async def test_a_brief_with_a_blocked_term_is_refused_at_intake(
    settings: Settings, db: Database, acme: str
) -> None:
    provider = CountingProvider()
    request = GenerationRequest(brief="an instant coffee promo", brand=acme, size="128x128")
    result = await run_generation(
        request, settings=settings, db=db, providers={"procedural": provider}
    )
    assert result.status == "refused"
    assert "instant coffee" in result.reason
    assert provider.calls == [], "a refused brief must not reach any provider"


async def test_budget_too_small_for_one_image_spends_nothing(
    settings: Settings, db: Database, acme: str
) -> None:
    provider = CountingProvider()
    request = GenerationRequest(brief="a cup", brand=acme, size="128x128", budget_usd=0.005)
    result = await run_generation(
        request, settings=settings, db=db, providers={"procedural": provider}
    )
    assert result.status == "failed" and result.cost_usd == 0
    assert provider.calls == []
    assert "budget" in result.reason


async def test_unknown_brand_template_and_model_are_bad_input(
    settings: Settings, db: Database, acme: str
) -> None:
    with pytest.raises(NotFoundError):
        await run_generation(
            GenerationRequest(brief="x", brand="Nope"), settings=settings, db=db, use_memory=False
        )
    with pytest.raises(NotFoundError):
        await run_generation(
            GenerationRequest(brief="x", brand=acme, template="nope"),
            settings=settings,
            db=db,
            use_memory=False,
        )
    with pytest.raises(BadInputError, match="unknown model"):
        await run_generation(
            GenerationRequest(brief="x", brand=acme, model="acme/none"),
            settings=settings,
            db=db,
            use_memory=False,
        )
    with db.session() as session:
        assert crud.list_runs(session, tenant="default") == []


class FirstModelDownProvider(CountingProvider):
    """A backend whose first-chosen model is down (its circuit breaker open).

    Which tier the bandit tries first depends on the request's seed, so the outage follows
    the agent's first choice rather than a fixed tier.
    """

    def __init__(self) -> None:
        super().__init__()
        self.down: str | None = None

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.calls.append(request)
        self.down = self.down or request.model
        if request.model == self.down:
            from brandloop.tools.providers.errors import ProviderUnavailableError

            raise ProviderUnavailableError("circuit open", provider="procedural")
        return await self.inner.generate(request)


async def test_an_open_breaker_falls_back_to_the_next_tier_and_excludes_the_model(
    settings: Settings, db: Database, acme: str, seed: int
) -> None:
    provider = FirstModelDownProvider()
    request = GenerationRequest(
        brief="a coffee cup on a table", brand=acme, count=1, size="128x128", seed=seed
    )
    result = await run_generation(
        request, settings=settings, db=db, providers={"procedural": provider}, use_memory=False
    )
    assert provider.down in {"draft", "studio"}
    fallbacks = [d for d in result.decisions if d.action == "fallback_model"]
    assert fallbacks, [(d.action, d.reason) for d in result.decisions]
    assert "circuit breaker open" in fallbacks[0].reason
    assert f"procedural/{provider.down}" in fallbacks[0].reason
    later = [c.model for c in provider.calls[1:]]
    assert later and provider.down not in later, "the failing model is not tried again"
    # with one of two tiers lost, no repair may climb onto it: a soft image gets new seeds
    after = [d.action for d in result.decisions[result.decisions.index(fallbacks[0]) :]]
    assert "upgrade_tier" not in after, after
    if result.status != "succeeded":  # the other tier could not make it: an honest stop
        assert result.decisions[-1].action in {"stop_unpromising", "stop_iterations"}


async def test_a_ratio_past_four_to_one_is_made_at_four_to_one_and_the_run_says_so(
    settings: Settings, db: Database, acme: str, seed: int
) -> None:
    provider = CountingProvider()
    request = GenerationRequest(
        brief="a cup", brand=acme, aspect_ratio="9:1", seed=seed, budget_usd=1.0
    )
    result = await run_generation(
        request, settings=settings, db=db, providers={"procedural": provider}
    )
    (adapted,) = [d for d in result.decisions if d.action == "adapt_aspect"]
    assert "9:1 is past 4:1" in adapted.reason and "1024x256" in adapted.reason
    assert provider.calls and all((c.width, c.height) == (1024, 256) for c in provider.calls)
    within = GenerationRequest(brief="a cup", brand=acme, aspect_ratio="4:1", seed=seed)
    ok = await run_generation(within, settings=settings, db=db, providers={"procedural": provider})
    assert "adapt_aspect" not in [d.action for d in ok.decisions]
