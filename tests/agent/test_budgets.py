"""Campaign and tenant budgets bound a run on top of its own budget."""

from __future__ import annotations

import pytest

from brandloop.agent.budgets import headroom, set_budget, spent
from brandloop.agent.runner import run_generation
from brandloop.domain import GenerationRequest
from brandloop.errors import BadInputError
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.agent.helpers import AUTUMN, CountingProvider, add_acme


async def test_a_campaign_budget_stops_the_run_before_the_request_budget(
    settings: Settings,
    db: Database,
    seed: int,
) -> None:
    brand = add_acme(settings, db)
    with db.session() as session:
        set_budget(session, tenant="default", scope="campaign", scope_id="fall", limit_usd=0.03)
    provider = CountingProvider()
    request = GenerationRequest(
        brief=AUTUMN,
        brand=brand,
        count=4,
        size="128x128",
        seed=seed,
        budget_usd=5.0,
        campaign_id="fall",
    )
    result = await run_generation(
        request, settings=settings, db=db, providers={"procedural": provider}, use_memory=False
    )
    assert provider.billed() <= 0.03 + 1e-9
    assert result.cost_usd == pytest.approx(provider.billed())
    stop = next(d for d in result.decisions if d.action == "stop_budget")
    assert "campaign fall budget" in stop.reason
    with db.session() as session:
        assert spent(session, tenant="default", campaign_id="fall") == pytest.approx(
            result.cost_usd
        )
        room = headroom(session, tenant="default", campaign_id="fall")
        assert room is not None and room.remaining_usd < 0.01


async def test_an_exhausted_tenant_budget_pays_for_nothing(
    settings: Settings, db: Database
) -> None:
    brand = add_acme(settings, db)
    with db.session() as session:
        set_budget(session, tenant="default", scope="tenant", scope_id="default", limit_usd=0.0)
    provider = CountingProvider()
    result = await run_generation(
        GenerationRequest(brief=AUTUMN, brand=brand, size="128x128", budget_usd=1.0),
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
    )
    assert provider.calls == []
    assert result.status == "failed" and "tenant default budget" in result.reason


def test_a_negative_budget_is_bad_input(settings: Settings, db: Database) -> None:
    with db.session() as session, pytest.raises(BadInputError):
        set_budget(session, tenant="t", scope="tenant", scope_id="t", limit_usd=-1)
