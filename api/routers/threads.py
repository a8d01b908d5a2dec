"""Chat threads: each message runs the agent with the thread's history, so a follow-up
("warmer, and drop the mug") edits what came before instead of starting over.

A follow-up edits the thread's current brief (``brandloop.agent.revision``): removals leave the
brief and go to the negative prompt, warmer/cooler/brighter/darker shift the palette emphasis
and the exposure target, additions become clauses; the LLM writer proposes the edit when one is
configured. The edit is stored with the message and shown in the thread. A follow-up keeps the
previous request's shape (count, size), template version and the seed of the image it
accepted, so the agent revisits the same composition with the edit applied.

When the brand asks before spending (conflicts: ``ask``), the question is the turn's reply and
stays open until the next message: a reply that takes its offer
(``brandloop.agent.clarification``) runs the asked request again, unedited, with that answer,
so preflight adapts; any other reply revises the brief as usual.

A turn whose run was refused (moderation, the brand's conflict policy ``refuse``, bad input)
stays in the thread, shown refused with its reason, and is passed over: the next follow-up
edits the latest turn that was not refused, so one refusal does not refuse every later turn.
A follow-up posted while the turn before it was undecided is applied again, as its run starts,
to the latest turn not refused if that turn was refused meanwhile (``api/jobs/turns.py``).

A thread keeps its brand by id (``ThreadRow.brand_id``): a renamed brand keeps its threads,
and a new brand under the old name is another brand.
"""

from __future__ import annotations

from typing import Annotated, Any

from anyio import from_thread
from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from brandloop.agent.clarification import accepts_offer, keeps_asked_size, offered_format
from brandloop.agent.nodes.intake import redacted_text
from brandloop.agent.revision import (
    BriefEdit,
    BriefState,
    asks_nothing,
    has_words,
    required_removals,
    revise,
)
from brandloop.agent.runner import check_request
from brandloop.api.auth import Principal
from brandloop.api.deps import Creator, PoolDep, Service, ServiceDep, SessionDep, Viewer
from brandloop.api.jobs import store
from brandloop.api.jobs.service import job_cost, job_public, submit
from brandloop.api.jobs.turns import SHAPE_KEYS, inherited_shape, turn_refusal, turn_stands
from brandloop.api.jobs.worker import WorkerPool
from brandloop.api.params import ASCII_INT
from brandloop.api.problems import PROBLEM_RESPONSES, ApiProblem, problems
from brandloop.api.schemas import (
    SHAPE_FIELDS,
    MessageAccepted,
    MessageCreate,
    MessagePublic,
    ThreadCreate,
    ThreadPublic,
    body_error,
    domain_request,
    redacted_field,
)
from brandloop.domain import MAX_BRIEF_CHARS, GenerationRequest
from brandloop.registry import crud
from brandloop.registry.held_images import held_images
from brandloop.registry.models import BrandRow, RunRow
from brandloop.registry.models_service import JobRow, ThreadMessageRow, ThreadRow
from brandloop.registry.types import usd
from brandloop.tools.moderation.minors import refuse_at_the_door

router = APIRouter(prefix="/threads", tags=["threads"], responses=PROBLEM_RESPONSES)


#: how many times a follow-up is applied again, each time to the brief the follow-ups stored
#: meanwhile made, before it is a 409 (a thread many clients post to at the same moment)
REVISIONS = 5


def _open_question(job: JobRow | None) -> dict[str, Any] | None:
    """The request of the thread's latest turn when that turn ended with the brand's
    clarifying question (the question is open until the next message), else None."""
    if job is None or not (job.result or {}).get("clarification"):
        return None
    return dict(job.request)


def _context(
    session: Session, thread: ThreadRow
) -> tuple[BriefState | None, dict[str, Any], int, dict[str, Any] | None]:
    """Where the thread's brief stands, what the last finished turn settled on, the
    sequence number of the message it stands at (0 before the first), and the request whose
    clarifying question is open (None when none is).

    Turns whose run was refused are passed over (they stay in the thread, shown refused): the
    brief stands where the latest turn not refused left it, so a refused instruction is not
    carried into every later turn's brief."""
    stored = store.thread_messages(session, thread_id=thread.id)
    seq = stored[-1].seq if stored else 0
    turns = [
        (m, session.get(JobRow, m.job_id) if m.job_id else None) for m in stored if m.role == "user"
    ]
    turns = [(m, job) for m, job in turns if turn_stands(job)]
    if not turns:
        return None, {}, seq, None
    latest, job = turns[-1]
    request = job.request if job is not None else {}
    asked = _open_question(job)
    state = BriefState(
        brief=latest.brief or latest.content,
        avoid=list(request.get("avoid") or []),
        shifts=list(request.get("shifts") or []),
    )
    carried: dict[str, Any] = {}
    for _, job in reversed(turns):
        if job is None:
            continue
        previous = job.request
        carried = {k: previous[k] for k in SHAPE_KEYS if previous.get(k) is not None}
        images = (job.result or {}).get("images", [])
        run = session.get(RunRow, job.run_id)
        if images:
            if images[0].get("seed") is not None:
                carried["seed"] = images[0]["seed"]
            if run is not None and run.template_ref:
                carried["template"] = run.template_ref
        break
    return state, carried, seq, asked


def _offered_format(question: dict[str, Any], brand: BrandRow) -> str | None:
    """The brand format the open question offered in place of the size it asked about."""
    asked = GenerationRequest.model_validate(question)
    width, height = asked.dimensions()
    kit = crud.brand_kit(brand)
    return offered_format(asked.brief, kit, width=width, height=height)


def refuse_crossing_the_minors_line(
    session: Session, *, principal: Principal, thread_id: str | None, text: str, source: str
) -> None:
    """422 ``refused`` when ``text`` (a thread's brief with its revisions) crosses the minors
    line, with the refusal on the audit record (its own transaction: this one rolls back).
    The brief the revision makes, and its render, are checked again as the turn's job is
    submitted (``api/jobs/service.py``), and intake checks the run's brief once more."""
    refuse_at_the_door(
        session,
        tenant=principal.tenant,
        actor=principal.name,
        subject_type="thread",
        subject_id=thread_id or "(new thread)",
        texts=((source, text),),
    )


def post_message(
    thread_id: str,
    body: MessageCreate,
    principal: Principal,
    session: Session,
    service: Service,
    pool: WorkerPool,
    *,
    field: str = "content",
) -> MessageAccepted:
    """Store the message and queue its job. Runs in the threadpool (it reads and writes the
    registry); the brief's revision and the enqueue run on the serving loop. ``field``: what
    the caller's body calls the message, named by a 422 about it (a brief past the limit once
    redacted, or once the follow-up is applied).

    Follow-ups to one thread are applied one after another, each to the brief the one before
    made, also when they arrive at the same moment (on any replica): the revision is made
    without a lock (a writer may take seconds), and stored only if the thread has not moved
    on meanwhile - under the thread's lock, which holds until the message and its job are
    committed. If it has, nothing of it is kept (no job, no quota held) and the follow-up is
    revised again on the brief that is now current; after :data:`REVISIONS` tries, a 409."""
    # redacted as the runner redacts a brief, before a writer sees it or anything is stored
    content = redacted_field(body.content, field)
    for _ in range(REVISIONS):
        accepted = _apply(thread_id, body, content, principal, session, service, field)
        if accepted is not None:
            message, job = accepted
            from_thread.run(pool.enqueue, job.id)
            # its job was just submitted: a new run, nothing spent yet
            return MessageAccepted(
                message=_message_public(message, job, cost_usd=0.0),
                job=job_public(job, cost_usd=0.0),
            )
    raise ApiProblem(
        409,
        "conflict",
        f"thread {thread_id} moved on while this follow-up was being applied (other follow-ups "
        f"were stored first, {REVISIONS} times); nothing was stored: read the thread again "
        "and post the follow-up again",
    )


def _apply(
    thread_id: str,
    body: MessageCreate,
    content: str,
    principal: Principal,
    session: Session,
    service: Service,
    field: str,
) -> tuple[ThreadMessageRow, JobRow] | None:
    """Revise the thread's current brief by ``content`` and store the message with its queued
    job, committed; None, with nothing stored, when another message was stored meanwhile."""
    thread = store.get_thread(session, tenant=principal.tenant, thread_id=thread_id)
    if thread is None:
        raise ApiProblem(404, "not-found", f"no thread {thread_id}")
    brand = store.thread_brand(session, thread=thread)
    if brand is None:
        raise ApiProblem(
            409,
            "conflict",
            f"thread {thread.id} was started for brand {thread.brand!r}, which cannot be told "
            "from the brands stored now (renamed or replaced before threads kept their brand's "
            "id); nothing was stored: start a thread for the brand",
        )
    state, carried, seq, question = _context(session, thread)
    # the instruction with the brief it edits, before any writer sees it; then what it made
    asked = "\n".join(t for t in (state.brief if state is not None else "", content) if t)
    refuse_crossing_the_minors_line(
        session, principal=principal, thread_id=thread.id, text=asked, source="revision"
    )
    edit: BriefEdit | None = None
    brief = content
    nearest = _offered_format(question, brand) if question is not None else None
    answers = question is not None and (
        accepts_offer(content) or (nearest is not None and keeps_asked_size(content))
    )
    if state is not None and question is not None and answers:
        # the answer to the open question: the asked request again, unedited, with the answer
        brief = state.brief
        kept = ("avoid", "shifts", "seed", "template")
        carried |= {k: question[k] for k in kept if question.get(k) is not None}
        carried["answer"] = content
        if nearest is not None and accepts_offer(content):  # the offer: the nearest format
            carried = {k: v for k, v in carried.items() if k not in ("size", "aspect_ratio")}
            carried["size"] = nearest
    elif state is not None:
        # a question back, or no words: no turn, nothing paid for - unless a configured
        # writer reads an edit in a question the rules cannot ("could the lighting feel
        # more like sunset?"); it never sees a follow-up without a word
        nothing = asks_nothing(content)
        if nothing and (service.writer is None or not has_words(content)):
            raise body_error((field,), _asks_nothing_message(open_question=question is not None))
        edit = from_thread.run(revise, state, content, service.writer)
        if nothing and edit.by == "rules":  # the writer proposed nothing usable
            raise body_error((field,), _asks_nothing_message(open_question=question is not None))
        clash = required_removals(edit.removed, list(crud.brand_kit(brand).required_terms))
        if clash:
            term, need = clash[0]
            raise body_error(
                (field,),
                f"{brand.name} requires {need!r} in every image, so a follow-up cannot take "
                f"out {term!r}: ask for another change, or change the brand kit's required "
                "terms",
            )
        brief = edit.after
        if len(brief) > MAX_BRIEF_CHARS:  # never cut: the run would lose what was asked
            raise body_error(
                (field,),
                f"the brief this follow-up makes is {len(brief)} characters; the limit is "
                f"{MAX_BRIEF_CHARS}: shorten the follow-up or start a new thread",
            )
        carried |= {"avoid": edit.avoid, "shifts": edit.all_shifts}
        refuse_crossing_the_minors_line(
            session, principal=principal, thread_id=thread.id, text=brief, source="revision"
        )
    own = body.model_dump(exclude={"content"}, exclude_none=True)
    inherited = inherited_shape(own)
    carried = {k: v for k, v in carried.items() if k not in SHAPE_KEYS or k in inherited}
    fields = {**carried, **own}
    # the brand by its id: a rename before the job runs does not lose it, nor a namesake take it
    request = domain_request(
        brief=brief, brand=brand.id, tenant=principal.tenant, thread_id=thread.id, **fields
    )
    # checked (the rendering in this session, before anything is written) and stored with its
    # quota hold, not yet committed
    job = submit(
        session,
        settings=service.settings,
        db=service.db,
        principal=principal,
        request=request,
        kind="thread_message",
        quota_usd=service.api.daily_quota_usd,
        thread_id=thread.id,
    )
    store.lock_thread(session, thread_id=thread.id)
    if store.last_seq(session, thread_id=thread.id) != seq:
        session.rollback()  # the job and its hold with it: this edit was of an older brief
        return None
    message = store.add_message(
        session,
        thread_id=thread.id,
        role="user",
        content=content,
        brief=brief,
        job_id=job.id,
        edit=edit.model_dump(mode="json") if edit is not None else None,
        # what a follow-up took from the turn it edits, taken again from the turn that
        # stands if that one is refused or cancelled before this one runs
        inherited=inherited if state is not None else None,
    )
    session.commit()
    return message, job


def _asks_nothing_message(*, open_question: bool) -> str:
    """What a follow-up that asks for no change is told (brandloop's words, never the input)."""
    asked = (
        "the brand's question is still open: answer it ('yes' takes its offer) or say what to "
        "change"
        if open_question
        else "say what to change"
    )
    return (
        "this follow-up asks for no change to the brief (a question, an acknowledgement such "
        "as 'ok', words that name nothing to show such as 'drop the', or no words; an undo is "
        f"not read): nothing was stored; {asked}, e.g. 'make it warmer', 'drop the mug' or "
        "'bring back the mug'"
    )


def _reply(job: JobRow | None, *, held: int = 0) -> str | None:
    """The turn's answer in a line; a turn waiting for review counts the ``held`` images its
    run accepted (nothing is delivered yet), as the studio's thread page does."""
    if job is None or job.result is None:
        return None
    result = job.result
    if result.get("clarification"):  # the brand's conflict policy asks before spending
        return str(result["clarification"])
    count = held if job.state == "awaiting_review" else len(result.get("images", []))
    text = f"{result.get('status')}: {count} image(s), {usd(result.get('cost_usd', 0))}"
    return f"{text}. {result['reason']}" if result.get("reason") else text


def _message_public(
    row: ThreadMessageRow, job: JobRow | None, *, cost_usd: float, held: int = 0
) -> MessagePublic:
    return MessagePublic(
        id=row.id,
        seq=row.seq,
        role=row.role,  # type: ignore[arg-type,unused-ignore]
        content=row.content,
        brief=row.brief,
        edit=BriefEdit.model_validate(row.edit) if row.edit else None,
        job=job_public(job, cost_usd=cost_usd) if job is not None else None,
        reply=_reply(job, held=held),
        refused=turn_refusal(job),
    )


def _thread_public(
    thread: ThreadRow, names: dict[str, str], messages: list[MessagePublic] | None = None
) -> ThreadPublic:
    """The thread, its brand named as it is called now (``names``: brand id -> name)."""
    return ThreadPublic(
        id=thread.id,
        brand=names.get(thread.brand_id or "", thread.brand),
        brand_id=thread.brand_id,
        title=thread.title,
        created_at=thread.created_at,
        messages=messages or [],
    )


def thread_public(session: Session, thread: ThreadRow) -> ThreadPublic:
    messages = []
    for row in store.thread_messages(session, thread_id=thread.id):
        job = session.get(JobRow, row.job_id) if row.job_id else None
        cost = job_cost(session, job) if job is not None else 0.0
        waiting = job is not None and job.state == "awaiting_review"
        held = len(held_images(session, run_id=job.run_id)) if job is not None and waiting else 0
        messages.append(_message_public(row, job, cost_usd=cost, held=held))
    names = store.brand_names(session, tenant=thread.tenant, ids=[thread.brand_id])
    return _thread_public(thread, names, messages)


def refuse_a_shape_without_message(body: ThreadCreate) -> None:
    """A 422 naming the shape fields (count, size, budget...) of a body with no ``message``
    (any named, also as ``null``, as the schema's ``dependentSchemas`` says): they are the
    first turn's, and with no first turn they were dropped with a 201, the caller's count or
    budget silently not kept for anything."""
    given = sorted(body.model_fields_set & SHAPE_FIELDS)
    if body.message is None and given:
        raise body_error(
            (given[0],),
            f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for the thread's first "
            "message: send them with a `message`, or with the follow-up they are for",
        )


@router.post(
    "",
    status_code=201,
    response_model=ThreadPublic,
    summary="Start a chat thread",
    responses=problems(402, 409, 503),
)
def create_thread(
    body: ThreadCreate, principal: Creator, session: SessionDep, service: ServiceDep, pool: PoolDep
) -> ThreadPublic:
    refuse_a_shape_without_message(body)
    brand = crud.get_brand(session, tenant=principal.tenant, ref=body.brand)
    if brand is None:
        raise ApiProblem(404, "not-found", f"unknown brand {body.brand!r}")
    # redacted as the runner redacts a brief, before anything is checked or stored
    message = redacted_field(body.message, "message") if body.message is not None else None
    if message is not None:  # check the first request before anything is stored
        refuse_crossing_the_minors_line(
            session, principal=principal, thread_id=None, text=message, source="brief"
        )
        shape = body.model_dump(include=set(SHAPE_FIELDS), exclude_none=True)
        check_request(
            service.db,
            domain_request(brief=message, brand=brand.id, tenant=principal.tenant, **shape),
        )
    # the title is listed to every viewer of the tenant: personal data never reaches it
    thread = store.create_thread(
        session, tenant=principal.tenant, brand=brand, title=redacted_text(body.title)[:200]
    )
    session.commit()
    if message is not None:
        shape = body.model_dump(include=set(SHAPE_FIELDS), exclude_none=True)
        try:
            post_message(
                thread.id,
                MessageCreate(content=message, **shape),
                principal,
                session,
                service,
                pool,
                field="message",
            )
        except BaseException:
            # a first message refused (402 over the quota, 409, 503) leaves no thread behind:
            # an answer that is not a 2xx keeps nothing, so a retry starts afresh
            session.rollback()
            store.delete_thread_if_empty(session, thread_id=thread.id)
            session.commit()
            raise
    return thread_public(session, thread)


@router.get(
    "", response_model=list[ThreadPublic], summary="The tenant's threads (without messages)"
)
def list_threads(
    principal: Viewer,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200), ASCII_INT] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000), ASCII_INT] = 0,
) -> list[ThreadPublic]:
    threads = store.list_threads(session, tenant=principal.tenant, limit=limit, offset=offset)
    names = store.brand_names(session, tenant=principal.tenant, ids=[t.brand_id for t in threads])
    return [_thread_public(t, names) for t in threads]


@router.get("/{thread_id}", response_model=ThreadPublic, summary="The conversation with its images")
def get_thread(thread_id: str, principal: Viewer, session: SessionDep) -> ThreadPublic:
    thread = store.get_thread(session, tenant=principal.tenant, thread_id=thread_id)
    if thread is None:
        raise ApiProblem(404, "not-found", f"no thread {thread_id}")
    return thread_public(session, thread)


@router.post(
    "/{thread_id}/messages",
    status_code=202,
    responses=problems(402, 409, 503),
    response_model=MessageAccepted,
    summary="Send a follow-up; the agent edits what the thread made so far",
)
def create_message(
    thread_id: str,
    body: MessageCreate,
    principal: Creator,
    session: SessionDep,
    service: ServiceDep,
    pool: PoolDep,
) -> MessageAccepted:
    return post_message(thread_id, body, principal, session, service, pool)
