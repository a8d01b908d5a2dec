"""The generation cache: an identical request is free and recorded as a hit; a new model
version or a rejected template version invalidates what was cached."""

from __future__ import annotations

import pytest

from brandloop.agent.runner import catalog_models, run_generation
from brandloop.domain import Candidate, GenerationRequest
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.registry.models import TemplateVersionRow
from brandloop.settings import Settings
from brandloop.tools import cache as generation_cache
from tests.agent.helpers import AUTUMN, CountingProvider, add_acme


def request(brand: str, seed: int) -> GenerationRequest:
    return GenerationRequest(
        brief=AUTUMN, brand=brand, count=2, size="128x128", seed=seed, model="procedural/studio"
    )


async def test_a_repeated_request_is_served_from_the_cache_for_free(
    settings: Settings, db: Database, seed: int
) -> None:
    brand = add_acme(settings, db)
    first_provider = CountingProvider()
    first = await run_generation(
        request(brand, seed),
        settings=settings,
        db=db,
        providers={"procedural": first_provider},
        use_memory=False,
    )
    assert first_provider.calls and first.cost_usd > 0
    again = CountingProvider()
    second = await run_generation(
        request(brand, seed),
        settings=settings,
        db=db,
        providers={"procedural": again},
        use_memory=False,
    )
    assert again.calls == [], "identical candidates must not reach the provider"
    assert second.cost_usd == 0
    assert [i.sha256 for i in second.images] != []
    with db.session() as session:
        attempts = crud.list_attempts(session, run_id=second.run_id)
        assert attempts and all(a.cache_hit for a in attempts)
        assert all(a.cost_usd == 0 for a in attempts)
        stats = generation_cache.stats(session, tenant="default")
    assert stats.hits == len(attempts)
    assert stats.saved_usd == pytest.approx(first.cost_usd * len(attempts) / first.attempts)


async def test_a_new_model_version_invalidates_its_entries(
    settings: Settings, db: Database, seed: int
) -> None:
    brand = add_acme(settings, db)
    await run_generation(
        request(brand, seed), settings=settings, db=db, providers={"procedural": CountingProvider()},
        use_memory=False,
    )  # fmt: skip
    models = [
        m.model_copy(update={"version": "2"}) if m.id == "procedural/studio" else m
        for m in catalog_models(db, settings)
        if m.id == "procedural/studio"
    ]
    provider = CountingProvider()
    result = await run_generation(
        request(brand, seed),
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
        models=models,
    )
    assert provider.calls, "a new model version must be generated afresh"
    assert result.cost_usd > 0
    with db.session() as session:
        stats = generation_cache.stats(session, tenant="default")
    assert stats.hits == 0


async def test_a_rejected_template_version_invalidates_its_entries(
    settings: Settings, db: Database, seed: int
) -> None:
    brand = add_acme(settings, db)
    await run_generation(
        request(brand, seed), settings=settings, db=db, providers={"procedural": CountingProvider()},
        use_memory=False,
    )  # fmt: skip
    spec = next(m for m in catalog_models(db, settings) if m.id == "procedural/studio")
    with db.session() as session:
        entry = session.query(generation_cache.CacheEntryRow).first()
        assert entry is not None and entry.template_ref == "brand-hero@1"
        key = entry.key
        version = session.query(TemplateVersionRow).filter_by(version=1).one()
        version.status = "rejected"
    with db.session() as session:
        assert (
            generation_cache.lookup(
                session, tenant="default", key=key, spec=spec, template_ref="brand-hero@1"
            )
            is None
        )
        assert session.get(generation_cache.CacheEntryRow, key) is None


def test_the_key_covers_what_decides_the_pixels(settings: Settings, db: Database) -> None:
    spec = next(m for m in catalog_models(db, settings) if m.id == "procedural/studio")
    base = Candidate(id="c", template="t@1", prompt="p", model=spec.id, seed=1, width=64, height=64)
    key = generation_cache.cache_key(spec, base)
    assert generation_cache.cache_key(spec, base.model_copy(update={"id": "other"})) == key
    for change in (
        {"prompt": "q"},
        {"negative_prompt": "n"},
        {"seed": 2},
        {"width": 65},
        {"params": {"steps": 30}},
    ):
        assert generation_cache.cache_key(spec, base.model_copy(update=change)) != key
    assert generation_cache.cache_key(spec.model_copy(update={"version": "9"}), base) != key
    # whose seed it is: an entry made for --seed 1 never serves a request naming seed 2
    named = generation_cache.cache_key(spec, base, request_seed=1)
    assert named != key and generation_cache.cache_key(spec, base, request_seed=None) == key
    assert generation_cache.cache_key(spec, base, request_seed=2) != named
    assert generation_cache.cache_key(spec, base, request_seed=1) == named


async def test_purge_by_model(settings: Settings, db: Database, seed: int) -> None:
    brand = add_acme(settings, db)
    await run_generation(
        request(brand, seed), settings=settings, db=db, providers={"procedural": CountingProvider()},
        use_memory=False,
    )  # fmt: skip
    with db.session() as session:
        assert generation_cache.purge(session, tenant="default", model="procedural/draft") == 0
        assert generation_cache.purge(session, tenant="default", model="procedural/studio") > 0
        assert generation_cache.stats(session, tenant="default").entries == 0


def test_concurrent_stores_of_one_key_and_tenants_kept_apart(
    settings: Settings, db: Database
) -> None:
    spec = next(m for m in catalog_models(db, settings) if m.id == "procedural/studio")
    cand = Candidate(id="c", template="t@1", prompt="p", model=spec.id, seed=1, width=64, height=64)
    key = generation_cache.cache_key(spec, cand, tenant="a")
    assert generation_cache.cache_key(spec, cand, tenant="b") != key
    fields = {
        "tenant": "a", "key": key, "spec": spec, "template_ref": "t@1",
        "artifact_sha256": "0" * 64, "seed_returned": 1, "provider_request_id": None,
        "cost_usd": 0.04,
    }  # fmt: skip
    with db.session() as first:
        assert first.get(generation_cache.CacheEntryRow, key) is None
        with db.session() as second:
            generation_cache.store(second, **fields)
        row = generation_cache.store(first, **fields)  # the other run got there first
        assert row.key == key
    with db.session() as session:
        assert generation_cache.stats(session, tenant="a").entries == 1
        assert generation_cache.stats(session, tenant="b").entries == 0
        assert (
            generation_cache.lookup(session, tenant="b", key=key, spec=spec, template_ref="t@1")
            is None
        )
