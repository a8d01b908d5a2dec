"""A thread's turns, as the workers take them: a follow-up runs only once every earlier turn
of its thread is decided, and a follow-up made on a turn that was then refused is applied
again to the latest turn not refused, so a refused turn's text is never carried into a later
turn's brief, whatever the timing (docs/http-api.md, Threads).

A follow-up whose earlier turn is still undecided is **parked**: a worker that takes it gives
it back at once (it stays ``queued``, holding no worker slot and no lease), and the turn
before it sends it again when it is decided (:func:`ready_turn`, called by whoever decides a
turn: the worker that ran it, the cancel of a queued one). A turn is never let go early by a
timeout, so the turns of a thread run one after another, in order, and a thread with many
follow-ups never holds more than one worker. If the process that decided a turn dies before
sending the next, the next is sent again as any lost job is (the Celery sweep's stranded
queued jobs, or the pool's recovery at start).

A follow-up is revised as it is posted, on the brief of the latest turn not refused *then*;
a turn still running may be refused after that (moderation, the conflict policy, bad input,
all decided as its run starts). So before a follow-up's run begins, if the brief it edited is
not the one the latest turn not refused now stands at, it is revised again on that brief, and
what it took from the turn it was made on rather than naming it (count, size or aspect ratio,
budget: the message's ``inherited``) is taken from the turn that stands instead; a budget
larger than what was held for the follow-up against the quota is cut to the hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from brandloop.agent.revision import BriefState, revise
from brandloop.agent.writer import PromptWriter
from brandloop.api.jobs import store
from brandloop.registry import spend
from brandloop.registry.db import Database
from brandloop.registry.models import RunRow
from brandloop.registry.models_service import JobRow, ThreadMessageRow

#: a turn whose job is in one of these states has been decided: refused or not
DECIDED = store.FINAL_STATES | {"awaiting_review"}
#: a request's shape: a follow-up that leaves it out takes the previous turn's
SHAPE_KEYS = ("count", "size", "aspect_ratio", "budget_usd")


def inherited_shape(own: Mapping[str, Any]) -> list[str]:
    """The shape fields a follow-up's body (``own``, what it named) left out, so takes from
    the turn it edits: size and aspect ratio go together, naming either replaces both."""
    named = set(own)
    if named & {"size", "aspect_ratio"}:
        named |= {"size", "aspect_ratio"}
    return [k for k in SHAPE_KEYS if k not in named]


def _shape_of(request: Mapping[str, Any] | None) -> dict[str, Any]:
    """The shape a turn's request sets; with no turn, a first message's (one image, the
    brand's format, the default budget: None)."""
    request = request or {}
    return {k: request.get(k) for k in SHAPE_KEYS} | {"count": request.get("count") or 1}


def turn_refusal(job: JobRow | None) -> str | None:
    """Why the turn of ``job`` was refused (its run's reason), once it was; None for a turn
    that was not (or not yet). The brand's clarifying question is a question, not a refusal:
    that turn is the one its answer is read against."""
    result = job.result if job is not None else None
    if not result or result.get("status") != "refused" or result.get("clarification"):
        return None
    return str(result.get("reason") or "refused")


def turn_stands(job: JobRow | None) -> bool:
    """Does the brief stand where this turn left it? Not after a refused turn, nor after one
    cancelled (its job stopped before it delivered anything): the next follow-up edits the
    latest turn before them, so their text is not carried into later turns."""
    return turn_refusal(job) is None and (job is None or job.state != "cancelled")


def _message(session: Session, job_id: str) -> ThreadMessageRow | None:
    return session.scalar(select(ThreadMessageRow).where(ThreadMessageRow.job_id == job_id))


def _earlier(session: Session, message: ThreadMessageRow) -> list[tuple[ThreadMessageRow, JobRow]]:
    """The user turns before ``message`` that have a job, in order."""
    rows = session.scalars(
        select(ThreadMessageRow)
        .where(
            ThreadMessageRow.thread_id == message.thread_id,
            ThreadMessageRow.seq < message.seq,
            ThreadMessageRow.role == "user",
            ThreadMessageRow.job_id.is_not(None),
        )
        .order_by(ThreadMessageRow.seq)
    )
    turns = [(m, session.get(JobRow, m.job_id)) for m in rows]
    return [(m, job) for m, job in turns if job is not None]


def waits_for_earlier_turn(session: Session, job_id: str) -> bool:
    """Is ``job_id`` a queued follow-up with a turn before it still undecided (parked)?"""
    job = session.get(JobRow, job_id)
    message = _message(session, job_id) if job is not None else None
    if job is None or job.state != "queued" or message is None:
        return False
    return any(other.state not in DECIDED for _, other in _earlier(session, message))


def earlier_turn_pending(db: Database, job_id: str) -> bool:
    """Is a turn before the one of queued job ``job_id`` still undecided?"""
    with db.session() as session:
        return waits_for_earlier_turn(session, job_id)


def ready_turn(db: Database, job_id: str) -> str | None:
    """The job of the turn of ``job_id``'s thread that may run now: the thread's first turn
    not decided, when it is ``queued`` (every turn before it is decided); None when that turn
    is running (or there is none, or ``job_id`` is no thread's turn). Called once a turn is
    decided, to send the turn after it, which was parked."""
    with db.session() as session:
        message = _message(session, job_id)
        if message is None:
            return None
        rows = session.scalars(
            select(ThreadMessageRow)
            .where(
                ThreadMessageRow.thread_id == message.thread_id,
                ThreadMessageRow.role == "user",
                ThreadMessageRow.job_id.is_not(None),
            )
            .order_by(ThreadMessageRow.seq)
        )
        for row in rows:
            job = session.get(JobRow, row.job_id)
            if job is None or job.state in DECIDED:
                continue
            return job.id if job.state == "queued" else None
        return None


def _base(
    session: Session, job_id: str
) -> tuple[ThreadMessageRow, BriefState | None, dict[str, Any], dict[str, Any]] | None:
    """The queued follow-up of ``job_id``, the brief it should edit (None: no turn before it
    stands, its content is the brief), the seed and template of the image that turn
    accepted, and that turn's shape where the follow-up took its own from the turn it was
    made on, when that is not the turn that stands; else None."""
    job = session.get(JobRow, job_id)
    message = _message(session, job_id) if job is not None else None
    if job is None or job.state != "queued" or message is None or not message.edit:
        return None  # a first message, or the answer to the brand's question: nothing edited
    inherited = message.inherited or []  # None: stored before it was recorded, kept as it is
    standing = [(m, j) for m, j in _earlier(session, message) if turn_stands(j)]
    if not standing:
        return message, None, {}, {k: v for k, v in _shape_of(None).items() if k in inherited}
    latest, previous = standing[-1]
    state = BriefState(
        brief=latest.brief or latest.content,
        avoid=list(previous.request.get("avoid") or []),
        shifts=list(previous.request.get("shifts") or []),
    )
    shape = {k: v for k, v in _shape_of(previous.request).items() if k in inherited}
    same_shape = all(job.request.get(k) == v for k, v in shape.items())
    if message.edit.get("before") == state.brief and same_shape:
        return None
    kept: dict[str, Any] = {}
    images = (previous.result or {}).get("images", [])
    if images and images[0].get("seed") is not None:
        kept["seed"] = images[0]["seed"]
        run = session.get(RunRow, previous.run_id)
        if run is not None and run.template_ref:
            kept["template"] = run.template_ref
    return message, state, kept, shape


async def settle_follow_up(
    db: Database, job_id: str, writer: PromptWriter | None, *, default_budget_usd: float
) -> None:
    """Apply the queued follow-up of ``job_id`` again to the brief of the latest turn not
    refused, when a turn it was made on has been refused since: its message's brief and edit
    and its job's request say what the run will run, with the shape (count, size, budget) of
    that turn where the follow-up's body named none (``default_budget_usd``: when no turn
    stands)."""
    found = await asyncio.to_thread(_read_base, db, job_id)
    if found is None:
        return
    content, state, kept, shape = found
    if shape.get("budget_usd", 0) is None:
        shape["budget_usd"] = default_budget_usd
    update: dict[str, Any]
    if state is None:
        brief, edit, update = content, None, {"avoid": [], "shifts": []}
    else:
        made = await revise(state, content, writer)
        brief, edit = made.after, made.model_dump(mode="json")
        update = {"avoid": made.avoid, "shifts": made.all_shifts}
    await asyncio.to_thread(_store, db, job_id, brief, edit, update | shape, kept)


def _read_base(
    db: Database, job_id: str
) -> tuple[str, BriefState | None, dict[str, Any], dict[str, Any]] | None:
    with db.session() as session:
        found = _base(session, job_id)
        return None if found is None else (found[0].content, *found[1:])


def _store(
    db: Database,
    job_id: str,
    brief: str,
    edit: dict[str, Any] | None,
    update: dict[str, Any],
    kept: dict[str, Any],
) -> None:
    """The follow-up as it is applied again; the seed and template of the image the turn it
    now edits accepted, where its request names none (the refused turn it was made on had
    none to give)."""
    with db.session() as session:
        job = session.get(JobRow, job_id)
        message = _message(session, job_id)
        if job is None or message is None or job.state != "queued":
            return  # claimed or cancelled meanwhile: it runs (or ran) as it stood
        message.brief, message.edit = brief, edit
        kept = {k: v for k, v in kept.items() if job.request.get(k) is None}
        if update.get("budget_usd") is not None:
            update = update | {"budget_usd": _held_budget(session, job, update["budget_usd"])}
        job.request = {**job.request, "brief": brief, **update, **kept}
        session.commit()


def _held_budget(session: Session, job: JobRow, wanted: float) -> float:
    """The budget a follow-up takes from the turn that stands, as far as what was held for it
    against the daily quota when it was posted allows (the quota is not asked again here):
    the hold shrinks to a smaller budget, and a larger one is cut to the hold."""
    spend.lock_tenant(session, job.tenant)
    hold = spend.admission_for(session, run_id=job.run_id, campaign_id=None)
    if hold is None or hold.state != "held":
        return wanted
    budget = min(wanted, float(hold.amount_usd))
    hold.amount_usd = round(budget, 6)
    return budget
