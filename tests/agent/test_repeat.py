"""Repeat work is free: an identical request replays its accepted images from the cache at $0,
with memory on; a similar one starts from the arm and seeds that were accepted."""

from __future__ import annotations

from brandloop.agent.runner import open_memory, run_generation
from brandloop.api.style_notes import add_style_note, forget_style_note
from brandloop.domain import MAX_SEED, GenerationRequest, RunResult
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.agent.helpers import CountingProvider, add_acme, allow


def _request(brand: str, **extra: object) -> GenerationRequest:
    fields: dict[str, object] = {
        "brief": "a teal coffee cup on a cream table by the window",
        "brand": brand,
        "size": "256x256",
        "seed": 21,
        "budget_usd": 0.5,
    }
    fields.update(extra)
    return GenerationRequest(**fields)  # type: ignore[arg-type]


async def _run(
    settings: Settings,
    db: Database,
    provider: CountingProvider,
    request: GenerationRequest,
    *,
    use_memory: bool = True,
) -> RunResult:
    return await run_generation(
        request, settings=settings, db=db, providers={"procedural": provider},
        image_moderator=allow, use_memory=use_memory,
    )  # fmt: skip


async def test_an_identical_request_costs_nothing_the_second_time(
    settings: Settings, db: Database
) -> None:
    brand = add_acme(settings, db)
    provider = CountingProvider()
    first = await _run(settings, db, provider, _request(brand))
    assert first.status == "succeeded" and first.cost_usd > 0
    paid = len(provider.calls)
    # memory is on: the first run left style notes and seeds that would change a new prompt
    second = await _run(settings, db, provider, _request(brand))
    assert len(provider.calls) == paid, "no provider call for a repeat"
    assert second.status == "succeeded" and second.cost_usd == 0
    assert [(i.model, i.seed, i.prompt) for i in second.images] == [
        (i.model, i.seed, i.prompt) for i in first.images
    ]
    assert all(image.cache_hit for image in second.images)
    assert "served from the cache at $0" in second.reason
    replay = [d for d in second.decisions if d.action == "replay_cache"]
    assert replay and first.run_id in replay[0].reason
    with db.session() as session:
        rows = crud.list_attempts(session, run_id=second.run_id)
    assert rows and all(r.cache_hit and r.cost_usd == 0 for r in rows)


async def test_a_request_that_differs_is_not_replayed(settings: Settings, db: Database) -> None:
    brand = add_acme(settings, db)
    provider = CountingProvider()
    await _run(settings, db, provider, _request(brand))
    changes: list[dict[str, object]] = [
        {"seed": 22},
        {"size": "320x192"},
        {"count": 2},
        {"seed": None},
        # a revision's removals and palette shifts go into the rendered prompt
        {"avoid": ["steam"]},
        {"shifts": ["warmer"]},
    ]
    for change in changes:
        other = await _run(settings, db, provider, _request(brand, **change), use_memory=False)
        assert not any(d.action == "replay_cache" for d in other.decisions), change


async def test_another_seed_is_not_served_from_the_cache_with_memory_on(
    settings: Settings, db: Database
) -> None:
    """Memory recalls the first run's accepted seed; a request naming another seed must still
    get new images for that seed, paid for, not the first run's from the cache at $0."""
    brand = add_acme(settings, db)
    provider = CountingProvider()
    first = await _run(settings, db, provider, _request(brand))
    assert first.images and first.cost_usd > 0
    for seed in (500, 900):  # far apart: no round of another run used them
        provider.calls.clear()
        other = await _run(settings, db, provider, _request(brand, seed=seed))
        assert not any(d.action == "replay_cache" for d in other.decisions), seed
        assert provider.calls and provider.calls[0].seed == seed, "the explicit seed wins"
        assert other.cost_usd > 0
        assert not any(image.cache_hit for image in other.images)
        assert first.images[0].seed not in {c.seed for c in provider.calls}


async def test_a_similar_request_starts_from_the_accepted_arm_and_seed(
    settings: Settings, db: Database
) -> None:
    brand = add_acme(settings, db)
    provider = CountingProvider()
    first = await _run(settings, db, provider, _request(brand))
    assert first.images
    accepted = first.images[0]
    provider.calls.clear()
    # unseeded: the accepted arm and its seed
    door = _request(brand, brief="a teal coffee cup on a cream table by the door", seed=None)
    similar = await _run(settings, db, provider, door)
    opening = provider.calls[0]
    assert f"procedural/{opening.model}" == accepted.model, "not the tier that failed before"
    assert opening.seed == accepted.seed
    assert similar.status == "succeeded"
    # seeded: the accepted arm, but the request's own seed
    provider.calls.clear()
    stairs = _request(brand, brief="a teal coffee cup on a cream table by the stairs", seed=99)
    await _run(settings, db, provider, stairs)
    opening = provider.calls[0]
    assert f"procedural/{opening.model}" == accepted.model
    assert opening.seed == 99


def _made(db: Database, result: RunResult) -> set[str]:
    """The bytes the provider made for the run's accepted images (before their receipts)."""
    with db.session() as session:
        rows = crud.list_attempts(session, run_id=result.run_id)
    return {r.artifact_sha256 for r in rows if r.outcome == "accepted" and r.artifact_sha256}


async def test_a_later_round_never_renders_the_next_requests_seed(
    settings: Settings, db: Database, seed: int
) -> None:
    """Round two of ``--seed S`` rendered seed S+1, so a request naming S+1 - memory starting it
    on the model S's run accepted - was S's image from the cache at $0 (outside tester, session
    17). A later round now takes seeds of its own, and the S+1 request new ones, paid for."""
    brand = add_acme(settings, db)
    provider = CountingProvider()
    first = await _run(settings, db, provider, _request(brand, seed=seed))
    assert any(d.action == "replan" for d in first.decisions), "needs a second round"
    assert first.images and first.images[0].seed != seed, "accepted in the second round"
    first_seeds = {c.seed for c in provider.calls}
    neighbour = (seed + 1) % (MAX_SEED + 1)
    provider.calls.clear()
    second = await _run(settings, db, provider, _request(brand, seed=neighbour))
    assert second.images and not any(image.cache_hit for image in second.images)
    assert second.cost_usd > 0 and "cache" not in second.reason
    assert provider.calls and provider.calls[0].seed == neighbour
    assert neighbour not in first_seeds
    assert _made(db, second).isdisjoint(_made(db, first)), "new images, not the same pixels"
    # the later round's seed is on the image (and so its receipt), and a repeat replays it
    provider.calls.clear()
    again = await _run(settings, db, provider, _request(brand, seed=seed))
    assert not provider.calls and again.cost_usd == 0
    assert [i.seed for i in again.images] == [i.seed for i in first.images]
    assert _made(db, again) == _made(db, first)


async def test_an_image_made_for_another_seed_is_not_served_from_the_cache(
    settings: Settings, db: Database, seed: int
) -> None:
    """``--seed S --n 2`` renders S and S+1 in one batch (as backends number a batch); a later
    ``--seed S+1`` renders S+1 too, for itself and paid for, not S's second image for free."""
    brand = add_acme(settings, db)
    provider = CountingProvider()
    start = min(seed, MAX_SEED - 1)
    pinned = {"model": "procedural/studio"}
    first = await _run(settings, db, provider, _request(brand, seed=start, count=2, **pinned))
    assert sorted(i.seed for i in first.images) == [start, start + 1]
    provider.calls.clear()
    second = await _run(settings, db, provider, _request(brand, seed=start + 1, **pinned))
    assert [c.seed for c in provider.calls] == [start + 1]
    assert second.cost_usd > 0 and not any(image.cache_hit for image in second.images)


async def test_a_forgotten_note_is_never_served_again_by_a_repeat(
    settings: Settings, db: Database
) -> None:
    """A run that recalled a style note, the note forgotten, then the identical request: it is
    planned afresh (paid), its prompt without the note, and the note's text is not remembered
    again. Before, the repeat replayed the first run's prompt, note and all, into a new receipt
    and back into memory (outside tester)."""
    brand_id = add_acme(settings, db)
    memory = open_memory(settings)
    note_text = "always a soft morning light"
    with db.session() as session:
        brand = crud.get_brand(session, tenant="default", ref=brand_id)
        assert brand is not None
        note = add_style_note(
            memory, session, tenant="default", brand=brand, actor="ana", text=note_text
        )
    provider = CountingProvider()
    first = await _run(settings, db, provider, _request(brand_id))
    assert first.status == "succeeded" and note_text in first.images[0].prompt
    with db.session() as session:
        brand = crud.get_brand(session, tenant="default", ref=brand_id)
        assert brand is not None
        assert forget_style_note(memory, session, tenant="default", brand=brand, note_id=note.id)
    paid = len(provider.calls)
    second = await _run(settings, db, provider, _request(brand_id))
    assert not any(d.action == "replay_cache" for d in second.decisions)
    assert second.status == "succeeded" and len(provider.calls) > paid
    assert all(note_text not in image.prompt for image in second.images)
    found = memory.search(tenant="default", brand=brand_id, query=note_text, k=20)
    assert all(note_text not in hit.text for hit in found), found
    third = await _run(settings, db, provider, _request(brand_id))  # the new run is a repeat
    assert any(d.action == "replay_cache" for d in third.decisions)
    assert [i.prompt for i in third.images] == [i.prompt for i in second.images]
