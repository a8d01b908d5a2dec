"""What a provider call leaves in the records when something goes wrong between its answer and
the transaction that settles it, on SQLite and PostgreSQL: a failed settlement leaves no image
row or file behind, a cache hit is counted with the attempt it serves, a run cancelled while
an answered call is post-processed settles that call at what was billed, and a call that fails
stops the calls running beside it, each recorded as it ended.

Failures come from the outside world: the database's own flush event (a lost connection), the
provider (a fake that answers at another size, breaks, or hangs), and the run's task being
cancelled as Ctrl-C or a job's cancel does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from brandloop.agent.runner import resume_run, run_generation
from brandloop.artifacts import ArtifactStore, sha256_hex
from brandloop.domain import GenerationRequest
from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry import crud, spend
from brandloop.registry.db import Database
from brandloop.registry.models import ArtifactRow, AttemptRow
from brandloop.registry.models_money import SpendReservationRow
from brandloop.settings import Settings
from brandloop.tools import cache as generation_cache
from tests.agent.helpers import AUTUMN, CountingProvider, add_acme
from tests.agent.test_reservations import FailsSettlingOnce
from tests.backends import steady_procedural
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]


def _request(brand: str, seed: int, **fields: Any) -> GenerationRequest:
    return GenerationRequest(
        brief=AUTUMN,
        brand=brand,
        size="128x128",
        budget_usd=1.0,
        seed=seed,
        model="procedural/draft",
        **fields,
    )


def _calls(db: Database, run_id: str) -> list[SpendReservationRow]:
    with db.session() as session:
        return list(
            session.scalars(
                select(SpendReservationRow).where(
                    SpendReservationRow.kind == "call", SpendReservationRow.run_id == run_id
                )
            )
        )


class AnsweringProvider(CountingProvider):
    """The counting provider, keeping what it answered (the bytes it billed for)."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[ImageResult] = []

    async def generate(self, request: ImageRequest) -> ImageResult:
        result = await super().generate(request)
        self.answers.append(result)
        return result


# --------------------------------------------------------------------------- W1


async def test_a_failed_settlement_leaves_no_image_row_or_file_behind(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """The transaction that settles a paid call fails: the call's image is not left as an
    artifact row nothing points to (until ``brandloop gc``), nor as a file no row names
    (which gc never finds). Resumed, the run leaves no such row either."""
    settings, db = settings_on_both, db_on_both
    brand = add_acme(settings, db)
    provider = AnsweringProvider()
    run_id = "run_orphanimage01"
    gate = FailsSettlingOnce()
    event.listen(Session, "before_flush", gate.before_flush)
    try:
        with pytest.raises(OperationalError):
            await run_generation(
                _request(brand, 11),
                settings=settings,
                db=db,
                run_id=run_id,
                providers={"procedural": provider},
                use_memory=False,
            )
    finally:
        event.remove(Session, "before_flush", gate.before_flush)
    shas = {sha256_hex(image.data) for answer in provider.answers for image in answer.images}
    assert shas
    _no_orphans(settings, db, run_id, shas)

    await resume_run(
        run_id, settings=settings, db=db, providers={"procedural": provider}, use_memory=False
    )
    shas |= {sha256_hex(image.data) for answer in provider.answers for image in answer.images}
    _no_orphans(settings, db, run_id, shas)


def _no_orphans(settings: Settings, db: Database, run_id: str, shas: set[str]) -> None:
    """Every artifact row of the run is an attempt's image, and every image file the provider
    answered with is named by a row."""
    store = ArtifactStore(settings.artifacts_dir)
    with db.session() as session:
        kept = set(session.scalars(select(ArtifactRow.sha256).where(ArtifactRow.run_id == run_id)))
        used = {a.artifact_sha256 for a in crud.list_attempts(session, run_id=run_id)}
        named = set(session.scalars(select(ArtifactRow.sha256)))
    assert kept <= used, "an artifact row that no attempt points to (left until gc)"
    assert [sha for sha in shas if store.exists(sha) and sha not in named] == [], (
        "an image file that no row names (gc never finds it)"
    )


# --------------------------------------------------------------------------- W2


class FailsRecordingAHitOnce:
    """Fails, once, the flush that records an attempt served from the cache (a lost
    connection between the lookup and the attempt's record)."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def before_flush(self, session: Session, _context: Any, _instances: Any) -> None:
        if self.failed:
            return
        for row in session.new:
            if isinstance(row, AttemptRow) and row.cache_hit:
                self.failed.append(row.id)
                raise OperationalError("record", {}, Exception("server closed the connection"))


async def test_a_cache_hit_is_counted_with_the_attempt_it_serves(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """The transaction recording a cache hit's attempt fails; the resumed run records it. The
    cache counts one hit per attempt it served (``cache stats``: hits and saved_usd), not one
    more for the attempt whose record was lost."""
    settings, db = settings_on_both, db_on_both
    brand = add_acme(settings, db)
    first = await run_generation(
        _request(brand, 13),
        settings=settings,
        db=db,
        providers={"procedural": CountingProvider()},
        use_memory=False,
    )
    assert first.cost_usd > 0
    run_id = "run_hitfails01"
    provider = CountingProvider()
    gate = FailsRecordingAHitOnce()
    event.listen(Session, "before_flush", gate.before_flush)
    try:
        with pytest.raises(OperationalError):
            await run_generation(
                _request(brand, 13),
                settings=settings,
                db=db,
                run_id=run_id,
                providers={"procedural": provider},
                use_memory=False,
            )
    finally:
        event.remove(Session, "before_flush", gate.before_flush)
    assert gate.failed
    with db.session() as session:
        assert generation_cache.stats(session, tenant="default").hits == 0

    await resume_run(
        run_id, settings=settings, db=db, providers={"procedural": provider}, use_memory=False
    )
    assert provider.calls == []
    with db.session() as session:
        hits = [a for a in crud.list_attempts(session, run_id=run_id) if a.cache_hit]
        stats = generation_cache.stats(session, tenant="default")
        entries = {
            row.artifact_sha256: row
            for row in session.scalars(select(generation_cache.CacheEntryRow))
        }
        saved = sum(entries[a.artifact_sha256].cost_usd for a in hits)
    assert hits
    assert stats.hits == len(hits), "the cache counts a hit whose attempt was never recorded"
    assert stats.saved_usd == pytest.approx(saved)


# --------------------------------------------------------------------------- W3


class CancelledOnAnswer:
    """Answers at twice the size asked (so the agent fits the image, in a thread) and bills
    for it; as it answers, ``on_answer`` stops the run (the test cancels the run's task, as
    Ctrl-C or a job's cancel does) - the cancel lands while the answer is post-processed."""

    name = "procedural"

    def __init__(self) -> None:
        self.inner = steady_procedural()
        self.calls: list[ImageRequest] = []
        self.billed = 0.0
        self.on_answer: Callable[[], Any] | None = None

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.calls.append(request)
        larger = {"width": request.width * 2, "height": request.height * 2}
        result = await self.inner.generate(request.model_copy(update=larger))
        self.billed += result.cost_usd
        if self.on_answer is not None:
            self.on_answer()
            self.on_answer = None
        return result


async def test_a_run_cancelled_after_the_provider_answered_settles_the_call_at_its_charge(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """The provider has answered and billed; the run is cancelled while the image is fitted.
    The call is settled at what the provider billed (not left held, to become unknown at its
    whole reservation), its attempt records the charge, and the run costs what was billed."""
    settings, db = settings_on_both, db_on_both
    brand = add_acme(settings, db)
    provider = CancelledOnAnswer()
    run_id = "run_cancelpost01"
    task = asyncio.ensure_future(
        run_generation(
            _request(brand, 17),
            settings=settings,
            db=db,
            run_id=run_id,
            providers={"procedural": provider},
            use_memory=False,
        )
    )
    provider.on_answer = task.cancel
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(provider.calls) == 1 and provider.billed > 0
    (call,) = _calls(db, run_id)
    assert (call.state, call.billing) == ("settled", "billed"), call.note
    assert call.charged_usd == pytest.approx(provider.billed)
    with db.session() as session:
        attempts = crud.list_attempts(session, run_id=run_id)
        assert [(a.billing, a.cost_usd) for a in attempts] == [("billed", provider.billed)]
        assert spend.committed(session, tenant="default", run_id=run_id) == pytest.approx(
            provider.billed
        )
        assert spend.run_cost(session, run_id=run_id) == pytest.approx(provider.billed)
        # ended cancelled as a job's cancel ends it: no call is left to become unknown
        crud.cancel_run(session, run_id=run_id, reason="cancelled while running")
        spend.abandon_calls(session, run_id=run_id)
    with db.session() as session:
        assert spend.unknown_calls(session, tenant="default") == []
        assert spend.run_cost(session, run_id=run_id) == pytest.approx(provider.billed)


# --------------------------------------------------------------------------- W4


class OneBreaksOneHangs:
    """The first call hangs (a slow backend); every other call breaks once the first is in
    flight (a bug in the backend's client). Records which calls were cut and which answered."""

    name = "procedural"

    def __init__(self) -> None:
        self.inner = steady_procedural()
        self.calls: list[str] = []
        self.in_flight = asyncio.Event()
        self.cut: list[str] = []
        self.answered: list[str] = []

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.calls.append(request.idempotency_key)
        if len(self.calls) > 1:
            await self.in_flight.wait()
            raise RuntimeError("the backend's client broke")
        self.in_flight.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cut.append(request.idempotency_key)
            raise
        result = await self.inner.generate(request)
        self.answered.append(request.idempotency_key)
        return result


async def test_a_call_that_breaks_stops_the_calls_beside_it(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """Two calls in parallel; one breaks while the other is in flight. The other is cut at
    once (it does not go on to be paid for a run that has failed), and every call of the run
    ends in a defined ledger state - unknown, as each may have been billed - none left held."""
    settings, db = settings_on_both, db_on_both
    brand = add_acme(settings, db)
    provider = OneBreaksOneHangs()
    run_id = "run_onebreaks01"
    with pytest.raises(RuntimeError, match="client broke"):
        await asyncio.wait_for(
            run_generation(
                _request(brand, 19, count=2),
                settings=settings,
                db=db,
                run_id=run_id,
                providers={"procedural": provider},
                use_memory=False,
            ),
            timeout=20,
        )
    assert len(provider.calls) >= 2
    slow = provider.calls[0]
    assert provider.cut == [slow], "the call in flight was not cut when its sibling broke"
    assert provider.answered == []
    calls = {row.call_key: row for row in _calls(db, run_id)}
    assert set(calls) == set(provider.calls)
    assert [key for key, row in calls.items() if row.state == "held"] == []
    assert {(row.state, row.billing) for row in calls.values()} == {("unknown", "unknown")}
    with db.session() as session:
        attempts = crud.list_attempts(session, run_id=run_id)
        assert sorted(a.idempotency_key for a in attempts) == sorted(provider.calls)
        assert {a.billing for a in attempts} == {"unknown"}
        assert spend.run_cost(session, run_id=run_id) == pytest.approx(
            sum(row.amount_usd for row in calls.values())
        )
