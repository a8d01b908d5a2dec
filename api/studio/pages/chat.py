"""Chat: threads per brand. Type a brief and watch the run live (SSE: plan, attempts, scores,
decisions); accepted images appear large with their receipts; a reply revises the brief (the
edit is shown in the thread). Every step goes through the /v1 thread functions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from brandloop.agent.nodes.intake import redacted_text
from brandloop.api.deps import PoolDep, ServiceDep, SessionDep, SettingsDep
from brandloop.api.jobs import store
from brandloop.api.jobs.turns import turn_refusal
from brandloop.api.problems import ApiProblem
from brandloop.api.routers.jobs import events_response
from brandloop.api.routers.threads import create_thread, post_message, thread_public
from brandloop.api.schemas import MessageCreate, ThreadCreate
from brandloop.api.studio.pages.runs import (
    WAITING_FOR_REVIEW,
    accepted_so_far,
    image_views,
    palette_of,
)
from brandloop.api.studio.sessions import session_still_valid
from brandloop.api.studio.web import (
    PAGE_SIZE,
    Creator,
    Csrf,
    FormPage,
    PageNumber,
    StudioError,
    StudioRoute,
    Viewer,
    form_on,
    page_count,
    render,
    see_other,
)
from brandloop.domain import MAX_BRIEF_CHARS, AcceptedImage, is_blank
from brandloop.registry import crud
from brandloop.registry.deleted_images import gone_images
from brandloop.registry.models import RunRow
from brandloop.registry.models_service import JobRow, ThreadRow
from brandloop.settings import Settings
from brandloop.views import run_receipts

router = APIRouter(route_class=StudioRoute, include_in_schema=False)
Brief = Annotated[str, Form(min_length=1, max_length=MAX_BRIEF_CHARS)]


def _threads(
    session: Session, tenant: str, page: int | None, current: ThreadRow | None = None
) -> dict[str, Any]:
    """A page of the thread list (newest first, as the other studio lists page), each
    thread's brand as named now (as its page names it), by its id. No page asked for on a
    thread's page is the page that lists that thread, so it stays in view."""
    total = store.count_threads(session, tenant=tenant)
    if page is None:
        before = store.threads_before(session, current) if current is not None else 0
        page = before // PAGE_SIZE + 1
    rows = store.list_threads(
        session, tenant=tenant, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    names = store.brand_names(session, tenant=tenant, ids=[r.brand_id for r in rows])
    items = [
        {
            "id": r.id,
            "title": r.title,
            "brand": names.get(r.brand_id, r.brand) if r.brand_id is not None else r.brand,
        }
        for r in rows
    ]
    return {"items": items, "total": total, "page": page, "pages": page_count(total)}


@router.get("/chat")
def chat_home(
    request: Request, user: Viewer, session: SessionDep, page: PageNumber = 1
) -> Response:
    brands = [b.name for b in crud.list_brands(session, tenant=user.tenant)]
    context = {"title": "Chat", "threads": _threads(session, user.tenant, page), "brands": brands}
    return render(request, "chat.html", context)


def default_title(message: str, limit: int = 60) -> str:
    """A thread's title when its creator gave none: the first message with its personal data
    redacted, then cut at a word within ``limit`` characters. Cut first, an email or a phone
    number lost the tail the redactor knows it by and was stored in the title (outside
    tester: ``...to: ana.lopez.private@acme-coffee-roasters``)."""
    clean = " ".join(redacted_text(message).split())
    if len(clean) <= limit:
        return clean
    cut = clean[: limit + 1].rsplit(" ", 1)[0]
    return (cut if cut and len(cut) < limit + 1 else clean[:limit]).rstrip() + "…"


def thread_title(title: str, message: str) -> str:
    """The title a thread started here gets: the one typed, else (none, or one that shows
    nothing, such as a zero-width space) :func:`default_title` of its first message."""
    return default_title(message) if is_blank(title) else title


#: the New thread form's fields as the page labels them
NEW_THREAD = FormPage(
    "/chat",
    labels={
        "brand": "Brand",
        "title": "Title",
        "message": "Brief",
        "size": "Size",
        "count": "Images",
    },
    field="message",
)
#: the Revise form of a thread's page
REVISE = FormPage("/chat/{thread_id}", labels={"content": "Revise"}, field="content")


@router.post("/chat")
@form_on(NEW_THREAD)
def start_thread(
    user: Creator,
    session: SessionDep,
    service: ServiceDep,
    pool: PoolDep,
    _: Csrf,
    brand: Annotated[str, Form(min_length=1, max_length=120)],
    message: Brief,
    title: Annotated[str, Form(max_length=200)] = "",
    size: Annotated[str, Form(max_length=20)] = "",
    count: Annotated[int, Form(ge=1, le=8)] = 1,
) -> Response:
    body = ThreadCreate(
        brand=brand,
        title=thread_title(title, message),
        message=message,
        count=count,
        size=size or None,
    )
    thread = create_thread(body, user.api_principal, session, service, pool)
    return see_other(f"/chat/{thread.id}#thread-h")  # focus on the new thread (studio.js)


def job_view(
    session: Session, settings: Settings, *, tenant: str, job: JobRow | None
) -> dict[str, Any]:
    """A turn's answer: its state, its images (the accepted ones so far while it runs), and
    why its run was refused when it was (the thread's ``refused`` for that turn)."""
    if job is None:
        return {
            "brief": "",
            "job": None,
            "images": [],
            "partial": [],
            "gone": {},
            "final": True,
            "refused": None,
        }
    images: list[dict[str, Any]] = []
    partial: list[str] = []
    if job.result is not None:
        run = session.get(RunRow, job.run_id)
        images = image_views(
            settings,
            [AcceptedImage.model_validate(i) for i in job.result.get("images", [])],
            run_receipts(session, run=run) if run is not None else [],
        )
    if job.result is None or job.state == "awaiting_review":
        partial = accepted_so_far(session, job.run_id)
    reason = (job.result or {}).get("reason", "") or (job.error or {}).get("detail", "")
    run_row = session.get(RunRow, job.run_id)
    return {
        "brief": run_row.brief if run_row is not None else "",  # what its images' alt text says
        "job": job,
        "images": images,
        "partial": partial,
        "gone": gone_images(session, tenant=tenant, shas=partial),
        "final": job.state in store.FINAL_STATES or job.state == "awaiting_review",
        "reason": WAITING_FOR_REVIEW if job.state == "awaiting_review" else reason,
        "refused": turn_refusal(job),
    }


@router.get("/chat/{thread_id}")
def thread_page(
    request: Request,
    thread_id: str,
    user: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    page: PageNumber | None = None,
) -> Response:
    thread = store.get_thread(session, tenant=user.tenant, thread_id=thread_id)
    if thread is None:
        raise StudioError(404, f"no thread {thread_id}")
    public = thread_public(session, thread)
    turns = []
    for message in public.messages:
        job = session.get(JobRow, message.job.id) if message.job is not None else None
        turns.append(
            {"message": message, **job_view(session, settings, tenant=user.tenant, job=job)}
        )
    context = {
        "title": thread.title if not is_blank(thread.title) else "Chat",
        "thread": public,
        "turns": turns,
        "threads": _threads(session, user.tenant, page, current=thread),
        "palette": palette_of(session, user.tenant, thread.brand_id or ""),
    }
    return render(request, "thread.html", context)


@router.post("/chat/{thread_id}/messages")
@form_on(REVISE)
def reply(
    thread_id: str,
    user: Creator,
    session: SessionDep,
    service: ServiceDep,
    pool: PoolDep,
    _: Csrf,
    content: Brief,
) -> Response:
    post_message(
        thread_id, MessageCreate(content=content), user.api_principal, session, service, pool
    )
    return see_other(f"/chat/{thread_id}#latest")


def _job(session: Session, tenant: str, job_id: str) -> JobRow:
    job = store.get_job(session, tenant=tenant, job_id=job_id)
    if job is None:
        raise StudioError(404, f"no job {job_id}")
    return job


@router.get("/chat/jobs/{job_id}/events")
def events(
    job_id: str,
    user: Viewer,
    session: SessionDep,
    service: ServiceDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The run's progress as server-sent events: the same stream as /v1/jobs/{id}/events."""
    try:
        return events_response(
            session, service, tenant=user.tenant, job_id=job_id, last_event_id=last_event_id,
            still_valid=session_still_valid(user.session_id),
        )  # fmt: skip
    except ApiProblem as exc:
        raise StudioError(exc.status, exc.detail) from None


@router.get("/chat/jobs/{job_id}/result")
def result(
    request: Request, job_id: str, user: Viewer, session: SessionDep, settings: SettingsDep
) -> Response:
    """The turn's images so far (an htmx fragment the live stream reloads)."""
    job = _job(session, user.tenant, job_id)
    thread = store.get_thread(session, tenant=user.tenant, thread_id=job.thread_id or "")
    context = {
        **job_view(session, settings, tenant=user.tenant, job=job),
        "palette": palette_of(session, user.tenant, thread.brand_id or "") if thread else [],
    }
    return render(request, "_turn_result.html", context)
