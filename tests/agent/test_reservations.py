"""The spend ledger: reservations under the tenant's lock, settlement, unknown outcomes,
reconciliation, and a run that never pays a call twice - on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from brandloop.agent.budgets import CallReservation, reserve_call, set_budget
from brandloop.agent.runner import resume_run, run_generation
from brandloop.domain import GenerationRequest
from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry import crud, spend
from brandloop.registry.db import Database
from brandloop.registry.models_money import SpendReservationRow
from brandloop.settings import Settings
from brandloop.tools.providers.errors import RefusedByProviderError, UnknownOutcomeError
from tests.agent.helpers import AUTUMN, CountingProvider, add_acme
from tests.backends import steady_procedural
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]


def _reserve(db: Database, key: str, *, amount: float = 0.01, **options: Any) -> CallReservation:
    arguments: dict[str, Any] = {
        "tenant": "t",
        "run_id": "run_x",
        "campaign_id": None,
        "request_budget_usd": 100.0,
        "call_key": key,
        "amount_usd": amount,
        "provider": "procedural",
        "model": "procedural/draft",
        "attempt_ids": [key],
        "fence": None,
        "replay_safe": False,
    } | options
    with db.session() as session:
        return reserve_call(session, **arguments)


def test_concurrent_reservations_never_pass_the_tenant_budget(db_on_both: Database) -> None:
    db = db_on_both
    with db.session() as session:
        set_budget(session, tenant="t", scope="tenant", scope_id="t", limit_usd=0.05)
    barrier = threading.Barrier(12)

    def one(index: int) -> str:
        barrier.wait()
        return _reserve(db, f"key-{index}", run_id=f"run_{index}").verdict

    with ThreadPoolExecutor(max_workers=12) as pool:
        verdicts = list(pool.map(one, range(12)))
    assert sorted(verdicts) == ["refused"] * 7 + ["reserved"] * 5
    with db.session() as session:
        assert spend.committed(session, tenant="t") == pytest.approx(0.05)


def test_a_reservation_waits_for_the_tenant_lock(db_on_both: Database) -> None:
    """A reservation checks the budget only once it holds the tenant's lock: while another
    transaction holds it (FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite) it waits, then
    sees what that transaction reserved."""
    db = db_on_both
    with db.session() as session:
        set_budget(session, tenant="t", scope="tenant", scope_id="t", limit_usd=0.05)
    done = threading.Event()
    verdict: list[str] = []

    def second() -> None:
        verdict.append(_reserve(db, "second", run_id="run_b", amount=0.02).verdict)
        done.set()

    with db.session() as session:
        spend.lock_tenant(session, "t")
        assert reserve_call(
            session,
            tenant="t",
            run_id="run_a",
            campaign_id=None,
            request_budget_usd=1.0,
            call_key="first",
            amount_usd=0.04,
            provider="procedural",
            model="procedural/studio",
            attempt_ids=[],
            fence=None,
            replay_safe=False,
        ) == CallReservation("reserved")
        thread = threading.Thread(target=second)
        thread.start()
        assert not done.wait(0.5), "the second reservation did not wait for the lock"
    thread.join(timeout=15)
    assert verdict == ["refused"]  # it saw the first one's $0.04 once the lock was free


def test_a_call_key_is_reserved_once_and_settles_by_its_billing(db_on_both: Database) -> None:
    db = db_on_both
    assert _reserve(db, "billed", amount=0.04).verdict == "reserved"
    assert _reserve(db, "free").verdict == "reserved"
    assert _reserve(db, "lost", amount=0.02).verdict == "reserved"
    with db.session() as session:
        assert spend.committed(session, tenant="t", run_id="run_x") == pytest.approx(0.07)
        spend.settle(session, call_key="billed", billing="billed", charged_usd=0.03)
        spend.settle(session, call_key="free", billing="not_billed", charged_usd=0.0)
        spend.settle(session, call_key="lost", billing="unknown", charged_usd=0.0)
    with db.session() as session:
        # billed: its charge; not billed: nothing; unknown: its whole reservation
        assert spend.committed(session, tenant="t") == pytest.approx(0.05)
        assert [r.call_key for r in spend.unknown_calls(session, tenant="t")] == ["lost"]
    assert _reserve(db, "billed").verdict == "billed"  # never paid again
    assert _reserve(db, "lost").verdict == "unknown"  # never paid again...
    assert _reserve(db, "lost", replay_safe=True).verdict == "reserved"  # ...unless it dedupes
    assert _reserve(db, "free").verdict == "reserved"  # never billed: may be tried again
    assert _reserve(db, "held-elsewhere").verdict == "reserved"
    # a reservation still held when its call key comes round again: its run stopped mid-call
    assert _reserve(db, "held-elsewhere").verdict == "unknown"
    with db.session() as session:
        row = spend.by_call_key(session, "held-elsewhere")
        assert row is not None and row.state == "unknown" and row.billing == "unknown"


def test_the_request_and_campaign_budgets_bound_reservations(db_on_both: Database) -> None:
    db = db_on_both
    with db.session() as session:
        set_budget(session, tenant="t", scope="campaign", scope_id="fall", limit_usd=0.03)
    assert _reserve(db, "a", request_budget_usd=0.015).verdict == "reserved"
    refused = _reserve(db, "b", request_budget_usd=0.015)
    assert refused.verdict == "refused" and "request budget" in refused.reason
    assert _reserve(db, "c", run_id="r2", campaign_id="fall", amount=0.02).verdict == "reserved"
    refused = _reserve(db, "d", run_id="r3", campaign_id="fall", amount=0.02)
    assert refused.verdict == "refused" and "campaign fall budget" in refused.reason
    assert _reserve(db, "e", run_id="r3", campaign_id="other", amount=0.02).verdict == "reserved"


async def test_a_reservation_refused_between_plan_and_call_stops_the_run(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """Another run takes the tenant's last money after this run planned: nothing is paid."""
    settings, db = settings_on_both, db_on_both
    brand = add_acme(settings, db)
    with db.session() as session:
        set_budget(session, tenant="default", scope="tenant", scope_id="default", limit_usd=0.05)
    provider = CountingProvider()

    def on_event(node: str, kind: str, payload: dict[str, Any]) -> None:
        if node == "plan" and kind == "decision":  # a concurrent run reserves everything left
            with db.session() as session:
                spend.lock_tenant(session, "default")
                spend.reserve_call(
                    session,
                    tenant="default",
                    run_id="run_other",
                    campaign_id=None,
                    call_key="other-run-call",
                    amount_usd=0.05,
                    provider="procedural",
                    model="procedural/studio",
                    attempt_ids=[],
                )

    result = await run_generation(
        GenerationRequest(brief=AUTUMN, brand=brand, size="128x128", budget_usd=1.0, seed=3),
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
        on_event=on_event,
    )
    assert provider.calls == []
    assert result.status == "failed" and "tenant default budget" in result.reason
    assert any(d.action == "stop_budget" and d.node == "generate" for d in result.decisions)
    assert result.cost_usd == 0


class FlakyProvider:
    """Fails the first call of each key as told, then behaves like the procedural renderer."""

    name = "procedural"

    def __init__(self, first: str) -> None:
        self.first = first
        self.inner = steady_procedural()
        self.calls: list[str] = []

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.calls.append(request.idempotency_key)
        if len(self.calls) == 1:
            if self.first == "unknown":
                raise UnknownOutcomeError("read timeout after the request was sent")
            error = RefusedByProviderError("content filtered", billing="billed", charged_usd=0.01)
            raise error
        return await self.inner.generate(request)


@pytest.mark.parametrize("first", ["unknown", "filtered"])
async def test_resume_never_pays_again_for_a_billed_or_unknown_call(
    settings_on_both: Settings, db_on_both: Database, first: str
) -> None:
    settings, db = settings_on_both, db_on_both
    brand = add_acme(settings, db)
    provider = FlakyProvider(first)
    request = GenerationRequest(
        brief=AUTUMN, brand=brand, size="128x128", budget_usd=1.0, seed=5, model="procedural/draft"
    )
    result = await run_generation(
        request, settings=settings, db=db, providers={"procedural": provider}, use_memory=False
    )
    first_key = provider.calls[0]
    assert provider.calls.count(first_key) == 1
    with db.session() as session:
        row = spend.by_call_key(session, first_key)
        assert row is not None
        attempt = crud.attempt_by_key(session, idempotency_key=first_key)
        assert attempt is not None
        if first == "unknown":
            assert (row.state, row.billing) == ("unknown", "unknown")
            assert attempt.billing == "unknown" and attempt.cost_usd == pytest.approx(0.01)
        else:
            assert (row.state, row.charged_usd) == ("settled", 0.01)
            assert attempt.outcome == "refused" and attempt.cost_usd == pytest.approx(0.01)
    # the possibly (or surely) billed call counts in what the run spent
    assert result.cost_usd == pytest.approx(0.01 * len(set(provider.calls)))

    # resuming the run from before its first call (as after a crash) never repeats it
    with db.session() as session:
        run = crud.get_run(session, tenant="default", run_id=result.run_id)
        assert run is not None
        run.result, run.status = None, "running"
    from brandloop.agent.checkpoints import checkpointer_for

    async with checkpointer_for(db.url, settings.checkpoints_path) as saver:
        await saver.adelete_thread(result.run_id)
    calls_before = list(provider.calls)
    resumed = await resume_run(
        result.run_id,
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
    )
    repeated = [k for k in provider.calls[len(calls_before) :] if k in calls_before]
    assert repeated == [], "a resumed run paid again for a call made before"
    # the resumed run counts the first call (rebuilt from the registry) without paying it again;
    # what it plans afterwards may differ (the planner learns from the outcomes recorded)
    assert resumed.cost_usd >= 0.01 - 1e-9
    with db.session() as session:
        again = crud.attempt_by_key(session, idempotency_key=first_key)
        assert again is not None and again.billing == (
            "unknown" if first == "unknown" else "billed"
        )


def test_reconciling_an_unknown_call_settles_its_run(db_on_both: Database) -> None:
    db = db_on_both
    assert _reserve(db, "lost", amount=0.04).verdict == "reserved"
    with db.session() as session:
        spend.settle(session, call_key="lost", billing="unknown", charged_usd=0.0)
        (row,) = spend.unknown_calls(session, tenant="t")
        assert spend.committed(session, tenant="t") == pytest.approx(0.04)
        reservation_id = row.id
    with db.session() as session:
        spend.reconcile(
            session, tenant="t", reservation_id=reservation_id, charged_usd=0.0, actor="ops"
        )
    with db.session() as session:
        assert spend.committed(session, tenant="t") == 0
        assert spend.unknown_calls(session, tenant="t") == []
        with pytest.raises(Exception, match="not unknown"):
            spend.reconcile(
                session, tenant="t", reservation_id=reservation_id, charged_usd=0.0, actor="ops"
            )
        with pytest.raises(Exception, match="no call reservation"):
            spend.reconcile(
                session, tenant="other", reservation_id=reservation_id, charged_usd=1, actor="x"
            )


class FailsSettlingOnce:
    """Fails, once, the flush that settles a billed call - as a crash or a lost connection
    between the provider's answer and the transaction that records it would (the database's
    own flush event, nothing of ours replaced)."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def before_flush(self, session: Session, _context: Any, _instances: Any) -> None:
        if self.failed:
            return
        for row in session.dirty:
            if isinstance(row, SpendReservationRow) and row.state == "settled":
                assert row.call_key is not None
                self.failed.append(row.call_key)
                raise OperationalError("settle", {}, Exception("server closed the connection"))


async def test_a_failed_settlement_leaves_no_free_cache_hit_for_the_resumed_run(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """The transaction that settles a paid call and records its attempt fails: nothing of it
    stays, the generation-cache entry for its image neither. Resumed, the run finds the
    reservation still held and records the call unknown at its reservation, never a free
    cache hit; it sends it no more, and no reservation stays held."""
    settings, db = settings_on_both, db_on_both
    brand = add_acme(settings, db)
    provider = CountingProvider()
    request = GenerationRequest(
        brief=AUTUMN, brand=brand, size="128x128", budget_usd=1.0, seed=7, model="procedural/draft"
    )
    run_id = "run_settlefails01"
    gate = FailsSettlingOnce()
    event.listen(Session, "before_flush", gate.before_flush)
    try:
        with pytest.raises(OperationalError):
            await run_generation(
                request,
                settings=settings,
                db=db,
                run_id=run_id,
                providers={"procedural": provider},
                use_memory=False,
            )
    finally:
        event.remove(Session, "before_flush", gate.before_flush)
    (failed_key,) = gate.failed
    assert [c.idempotency_key for c in provider.calls] == [failed_key]

    resumed = await resume_run(
        run_id, settings=settings, db=db, providers={"procedural": provider}, use_memory=False
    )
    keys = [c.idempotency_key for c in provider.calls]
    assert keys.count(failed_key) == 1, "the resumed run sent the billed call again"
    with db.session() as session:
        row = spend.by_call_key(session, failed_key)
        assert row is not None
        attempts = crud.list_attempts(session, run_id=run_id)
        lost = [a for a in attempts if a.id in row.attempt_ids]
        assert lost, "the billed call's attempts are recorded"
        for attempt in lost:
            assert not attempt.cache_hit, "a billed call recorded as a free cache hit"
            assert (attempt.billing, attempt.cost_usd) == ("unknown", pytest.approx(0.01))
        assert not [a for a in attempts if a.cache_hit]
        assert row.state == "unknown"
        held = session.scalars(
            select(SpendReservationRow).where(
                SpendReservationRow.run_id == run_id, SpendReservationRow.state == "held"
            )
        ).all()
        assert held == [], "a reservation is left held"
        ledger = spend.committed(session, tenant="default", run_id=run_id)
    # the run's cost is what the ledger holds for it, and what the provider billed
    assert resumed.cost_usd == pytest.approx(ledger)
    assert resumed.cost_usd == pytest.approx(provider.billed())
