"""Fencing tokens: a job's writes count only while its worker still holds the job's lease.

Every grant of a job's lease (``job_leases``) increases its ``fence``. A worker runs a job inside
:func:`holding` with the token it was granted; from then on every registry transaction of that
job that writes is checked when it commits: if the lease's token is no longer the worker's, the
transaction is rolled back with :class:`~brandloop.errors.LeaseLostError`. So a worker paused
past its lease (a stalled host, SIGSTOP) and then resumed can neither record attempts, nor
reserve budget, nor publish results, whatever point of the job it was at.

A review verdict's claim on its run (``review_claims``, ``agent/review_claims.py``) is a lease
of the same kind: the process applying a verdict holds a :class:`Fence` of kind ``review``,
keyed by the run.

On PostgreSQL the check reads the lease row ``FOR SHARE``: a takeover (an UPDATE of that row)
waits for the checked transaction to commit, so no write slips in after a newer grant. The
token travels in a context variable, which asyncio tasks and ``asyncio.to_thread`` inherit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from brandloop.errors import LeaseLostError
from brandloop.registry.models_agent import ReviewClaimRow
from brandloop.registry.models_scale import JobLeaseRow

if TYPE_CHECKING:
    from brandloop.registry.db import Database

_WROTE = "brandloop_wrote"


@dataclass(frozen=True)
class Fence:
    """The lease a worker holds: the job (for a ``review`` claim, the run), the token it was
    granted with, and the database the lease is in (for writes that do not go through a
    registry session: checkpoints)."""

    job_id: str
    token: int
    db: Database
    kind: Literal["job", "review"] = "job"


_current: ContextVar[Fence | None] = ContextVar("brandloop_fence", default=None)


def current() -> Fence | None:
    return _current.get()


@contextmanager
def holding(fence: Fence | None) -> Iterator[None]:
    """Run the block (and every task it starts) under ``fence``."""
    reset = _current.set(fence)
    try:
        yield
    finally:
        _current.reset(reset)


def verify_current() -> None:
    """Check the current fence, if any, in a transaction of its own (before a write that is
    not a registry session's, such as a LangGraph checkpoint)."""
    fence = _current.get()
    if fence is not None:
        with fence.db.session() as session:
            check(session, fence)


def check(session: Session, fence: Fence) -> None:
    """Raise :class:`LeaseLostError` unless ``fence`` is still the job's current lease (or
    the run's current review claim)."""
    if fence.kind == "review":
        query = select(ReviewClaimRow.fence).where(ReviewClaimRow.run_id == fence.job_id)
        what = f"the review claim of run {fence.job_id}"
    else:
        query = select(JobLeaseRow.fence).where(JobLeaseRow.job_id == fence.job_id)
        what = f"the lease of job {fence.job_id}"
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    token = session.execute(query).scalar_one_or_none()
    if token != fence.token:
        raise LeaseLostError(
            f"{what} moved on (token {token}, this worker holds {fence.token}): nothing is written"
        )


@event.listens_for(Session, "do_orm_execute")
def _note_statement(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE] = True


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, _flush: UOWTransaction) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "before_commit")
def _check_before_commit(session: Session) -> None:
    fence = _current.get()
    if fence is None:
        return
    if session.new or session.dirty or session.deleted:
        session.flush()
    if session.info.get(_WROTE):
        check(session, fence)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget(session: Session, *_: Any) -> None:
    session.info.pop(_WROTE, None)
