"""A review verdict's claim on the run it finishes: a lease, so that a verdict whose process died
is finished by whoever comes next, and no run is finished by two verdicts.

A verdict on a run waiting for review claims it in one transaction: the run goes
``awaiting_review`` -> ``running``, the verdict is recorded (``review_decisions``, the audit
log) and its claim (``review_claims``) is granted for ``BRANDLOOP_REVIEW_LEASE_SECONDS``. The
process applying it renews the claim every third of that on a thread of its own and gives it up
when the run has finished; every registry write it makes meanwhile is fenced by the claim's
token (``brandloop/registry/fencing.py``). A claim that lapsed without being given up was left
by a process that died (or stalled past it): the next verdict on the run, or an API process's
sweep (``WorkerPool``), takes it over and finishes the run with the verdict it names - the
first verdict recorded is the run's verdict, whoever finishes applying it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from brandloop.agent.nodes.intake import redacted_text
from brandloop.domain import utcnow
from brandloop.errors import ConflictError, NotFoundError
from brandloop.registry import crud, fencing
from brandloop.registry.db import Database
from brandloop.registry.held_images import deleted_held_images
from brandloop.registry.models import RunRow
from brandloop.registry.models_agent import CLAIM_RELEASED, ReviewClaimRow, ReviewDecisionRow

__all__ = [
    "RELEASED",
    "Claim",
    "Verdict",
    "claim",
    "lapse",
    "lapsed",
    "release",
    "renew",
    "renewing",
]

log = logging.getLogger(__name__)

#: the owner of a claim that was given up (its run finished, or waits for review again)
RELEASED = CLAIM_RELEASED
DONE = {"approve": "approved", "reject": "rejected"}


@dataclass(frozen=True)
class Verdict:
    """A human's approve or reject of a run, with their note and name."""

    decision: Literal["approve", "reject"]
    note: str
    actor: str

    def __post_init__(self) -> None:
        # stored (the review record, the audit log, the run's trace and reason) as a brief is:
        # its personal data and key-shaped tokens redacted, whoever gave the verdict
        object.__setattr__(self, "note", redacted_text(self.note))

    def answer(self) -> dict[str, str]:
        """What the run's review node is resumed with (``agent/nodes/review.py``)."""
        return {"decision": self.decision, "note": self.note, "actor": self.actor}


@dataclass(frozen=True)
class Claim:
    """A granted claim: the verdict the run is finished with, and the token writes are fenced
    by. ``taken_over`` says the verdict was recorded earlier, by a process that stopped."""

    run_id: str
    tenant: str
    owner: str
    token: int
    verdict: Verdict
    taken_over: bool

    def fence(self, db: Database) -> fencing.Fence:
        return fencing.Fence(self.run_id, self.token, db, kind="review")


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def claim(
    db: Database, *, tenant: str, run_id: str, verdict: Verdict | None, ttl: float, by: str
) -> Claim:
    """Claim the run for ``verdict`` if it waits for review; else take over a claim on it that
    lapsed, for the verdict that claim names (``verdict`` None: only that). ``by`` names who
    takes a claim over, in the audit log.

    Of two callers at once exactly one is granted the run; the other gets a
    :class:`ConflictError` saying who has it, as does anyone while a live claim holds it. An
    approval of a run one of whose held images the tenant deleted is a :class:`ConflictError`
    naming them, and nothing is recorded: the run waits for a rejection
    (``registry/held_images.py``)."""
    owner, now = _owner(), utcnow()
    with db.session() as session:
        if verdict is not None:
            claimed = session.execute(
                update(RunRow)
                .where(
                    RunRow.id == run_id,
                    RunRow.tenant == tenant,
                    RunRow.status == "awaiting_review",
                )
                .values(status="running")
                .execution_options(synchronize_session=False)
            )
            if getattr(claimed, "rowcount", 0) == 1:
                if verdict.decision == "approve":
                    gone = deleted_held_images(session, tenant=tenant, run_id=run_id)
                    if gone:
                        session.rollback()  # nothing recorded: the run still waits
                        raise ConflictError(_deleted_message(run_id, gone))
                decision = ReviewDecisionRow(
                    run_id=run_id,
                    tenant=tenant,
                    decision=verdict.decision,
                    note=verdict.note,
                    actor=verdict.actor,
                )
                session.add(decision)
                session.flush()
                crud.audit(
                    session, tenant=tenant, actor=verdict.actor,
                    action=f"run.review.{verdict.decision}", subject_type="run",
                    subject_id=run_id, detail={"note": verdict.note},
                )  # fmt: skip
                token = _grant(session, tenant, run_id, decision.id, owner, now, ttl)
                return Claim(run_id, tenant, owner, token, verdict, taken_over=False)
        left = session.get(ReviewClaimRow, run_id)
        if left is not None and left.tenant == tenant and _lapsed(left, now):
            taken = session.execute(
                update(ReviewClaimRow)
                .where(
                    ReviewClaimRow.run_id == run_id,
                    ReviewClaimRow.fence == left.fence,
                    ReviewClaimRow.owner != RELEASED,
                    ReviewClaimRow.expires_at < now,
                )
                .values(
                    owner=owner,
                    claimed_at=now,
                    expires_at=now + timedelta(seconds=ttl),
                    takeovers=ReviewClaimRow.takeovers + 1,
                    fence=ReviewClaimRow.fence + 1,  # the stopped claimant is fenced out
                )
                .execution_options(synchronize_session=False)
            )
            recorded = session.get(ReviewDecisionRow, left.decision_id)
            if getattr(taken, "rowcount", 0) == 1 and recorded is not None:
                earlier = Verdict(
                    "approve" if recorded.decision == "approve" else "reject",
                    recorded.note,
                    recorded.actor,
                )
                crud.audit(
                    session, tenant=tenant, actor=by, action="run.review.taken_over",
                    subject_type="run", subject_id=run_id,
                    detail={
                        "decision": earlier.decision, "by": earlier.actor,
                        "left_by": left.owner, "claimed_at": left.claimed_at.isoformat(),
                    },
                )  # fmt: skip
                return Claim(run_id, tenant, owner, left.fence + 1, earlier, taken_over=True)
            session.rollback()
            left = session.get(ReviewClaimRow, run_id)
        raise _conflict(session, tenant=tenant, run_id=run_id, held=left, now=now)


def _deleted_message(run_id: str, gone: list[str]) -> str:
    """Why an approval of a run whose held images were deleted is refused, and what to do."""
    images = "image " + gone[0] if len(gone) == 1 else "images " + ", ".join(gone)
    return (
        f"run {run_id} cannot be approved: its held {images} "
        f"{'was' if len(gone) == 1 else 'were'} deleted while it waited for review, and an "
        "approval delivers every image the run holds; reject the run instead (it still "
        "waits for review), then generate again if you need the images"
    )


def _lapsed(row: ReviewClaimRow, now: datetime) -> bool:
    return row.owner != RELEASED and row.expires_at < now


def _grant(
    session: Session,
    tenant: str,
    run_id: str,
    decision_id: int,
    owner: str,
    now: datetime,
    ttl: float,
) -> int:
    """The run's claim for ``owner`` (its row kept from an earlier verdict, or a new one): the
    token of this grant."""
    values = {
        "tenant": tenant,
        "decision_id": decision_id,
        "owner": owner,
        "claimed_at": now,
        "expires_at": now + timedelta(seconds=ttl),
        "takeovers": 0,
    }
    token = session.scalar(
        update(ReviewClaimRow)
        .where(ReviewClaimRow.run_id == run_id)
        .values(**values, fence=ReviewClaimRow.fence + 1)
        .returning(ReviewClaimRow.fence)
        .execution_options(synchronize_session=False)
    )
    if token is not None:
        return int(token)
    session.add(ReviewClaimRow(run_id=run_id, fence=1, **values))
    session.flush()
    return 1


def _conflict(
    session: Session, *, tenant: str, run_id: str, held: ReviewClaimRow | None, now: datetime
) -> ConflictError | NotFoundError:
    run = crud.get_run(session, tenant=tenant, run_id=run_id)
    if run is None:
        return NotFoundError(f"unknown run {run_id!r}")
    if held is not None and held.tenant == tenant and held.owner != RELEASED:
        recorded = session.get(ReviewDecisionRow, held.decision_id)
        verdict = f"{recorded.actor}'s {recorded.decision}" if recorded is not None else "a verdict"
        wait = max(0.0, (held.expires_at - now).total_seconds())
        return ConflictError(
            f"run {run_id} is being finished by {verdict} (claimed "
            f"{held.claimed_at.isoformat(timespec='seconds')}); should the process applying it "
            f"have stopped, the run is finished with that verdict by the next one, or by the "
            f"service on its own, once its claim lapses (in {wait:.0f} s)"
        )
    return ConflictError(f"run {run_id} is {run.status}, not awaiting review")


def renew(db: Database, *, run_id: str, owner: str, ttl: float) -> bool:
    """Extend the claim; False if it was lost (lapsed and taken over) or given up."""
    with db.session() as session:
        result = session.execute(
            update(ReviewClaimRow)
            .where(ReviewClaimRow.run_id == run_id, ReviewClaimRow.owner == owner)
            .values(expires_at=utcnow() + timedelta(seconds=ttl))
        )
        return bool(getattr(result, "rowcount", 0))


@contextmanager
def renewing(db: Database, held: Claim, ttl: float) -> Iterator[None]:
    """Renew the claim every third of ``ttl`` while the block runs, on a thread of its own (so
    the synchronous stretches of the run being finished cannot let it lapse)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(ttl / 3):
            try:
                if not renew(db, run_id=held.run_id, owner=held.owner, ttl=ttl):
                    log.warning("the review claim of run %s was lost", held.run_id)
                    return
            except Exception:
                log.exception("renewing the review claim of run %s failed", held.run_id)

    thread = threading.Thread(target=beat, name=f"review-claim-{held.run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def release(session: Session, *, run_id: str, owner: str) -> None:
    """Give the claim up (its run finished, or waits for review again); the row stays, so its
    token keeps growing."""
    session.execute(
        update(ReviewClaimRow)
        .where(ReviewClaimRow.run_id == run_id, ReviewClaimRow.owner == owner)
        .values(owner=RELEASED, expires_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def lapse(session: Session, *, run_id: str, owner: str) -> None:
    """Let the claim lapse now, kept (the process is stopping): whoever comes next finishes
    the run with its verdict."""
    session.execute(
        update(ReviewClaimRow)
        .where(ReviewClaimRow.run_id == run_id, ReviewClaimRow.owner == owner)
        .values(expires_at=utcnow() - timedelta(seconds=1))
        .execution_options(synchronize_session=False)
    )


def lapsed(db: Database) -> list[tuple[str, str]]:
    """(tenant, run id) of every claim that lapsed without being given up, oldest first."""
    with db.session() as session:
        rows = session.execute(
            select(ReviewClaimRow.tenant, ReviewClaimRow.run_id)
            .where(ReviewClaimRow.owner != RELEASED, ReviewClaimRow.expires_at < utcnow())
            .order_by(ReviewClaimRow.expires_at)
        )
        return [(tenant, run_id) for tenant, run_id in rows]
