"""Brand memory: search what a brand has accepted and noted; add, list and forget style notes.

Every route here is a plain ``def``: Chroma and the registry are called in the threadpool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy.orm import Session

from brandloop.agent.runner import open_memory
from brandloop.api.deps import Creator, SessionDep, SettingsDep, Viewer
from brandloop.api.params import ASCII_INT
from brandloop.api.problems import PROBLEM_RESPONSES, ApiProblem, problems
from brandloop.api.schemas import NOT_BLANK, NoteCreate, NoteCreated, not_blank
from brandloop.api.style_notes import add_style_note, forget_style_note, list_style_notes
from brandloop.memory.store import BrandMemory, MemoryHit
from brandloop.registry import crud
from brandloop.registry.models import BrandRow

#: a brand name two stored brands share (data from before names ignored case) is 409; a
#: memory store (Chroma) that cannot be reached or read is 503 ``memory-unavailable``
router = APIRouter(
    prefix="/memory",
    tags=["memory"],
    responses={
        **PROBLEM_RESPONSES,
        **problems(409),
        503: {
            **problems(503)[503],
            "description": "`memory-unavailable`: the brand memory store (Chroma) cannot be "
            "reached or read; try again later",
        },
    },
)


@router.get("/search", response_model=list[MemoryHit], summary="Nearest memory records of a brand")
def search(
    principal: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    brand: Annotated[str, Query(min_length=1, max_length=120)],
    q: Annotated[
        str,
        Query(min_length=1, max_length=2000, json_schema_extra={"pattern": NOT_BLANK}),
        not_blank("query"),
    ],
    k: Annotated[int, Query(ge=1, le=100), ASCII_INT] = 10,
) -> list[MemoryHit]:
    row = crud.get_brand(session, tenant=principal.tenant, ref=brand)
    if row is None:
        raise ApiProblem(404, "not-found", f"no brand {brand!r}")
    return open_memory(settings).search(tenant=principal.tenant, brand=row.id, query=q, k=k)


@router.post(
    "/notes",
    status_code=201,
    response_model=NoteCreated,
    summary="Add a style note to a brand's memory",
)
def add_note(
    body: NoteCreate, principal: Creator, session: SessionDep, settings: SettingsDep
) -> NoteCreated:
    """Personal data in the note (e-mail addresses, phone numbers, ...) and key-shaped tokens
    (another service's API key, as in a brief) are redacted before it is stored; ``redacted`` names the kinds taken out, ``text`` is what was kept. A note the
    brand's text gate refuses is 422 ``refused``, audited, and not stored."""
    row = crud.get_brand(session, tenant=principal.tenant, ref=body.brand)
    if row is None:
        raise ApiProblem(404, "not-found", f"no brand {body.brand!r}")
    added = add_style_note(
        open_memory(settings),
        session,
        tenant=principal.tenant,
        brand=row,
        actor=principal.name,
        text=body.text,
        policy_dirs=[settings.data_dir / "policies"],
    )
    return NoteCreated(id=added.id, brand=row.name, text=added.text, redacted=list(added.redacted))


def forget_note(
    memory: BrandMemory, session: Session, *, tenant: str, brand: BrandRow, note_id: str
) -> int:
    """Delete one style note (its text and vector); a prompt's id is refused."""
    if not note_id.startswith("note-"):
        raise ApiProblem(422, "bad-input", "only style notes are forgotten here")
    gone = forget_style_note(memory, session, tenant=tenant, brand=brand, note_id=note_id)
    if not gone:
        raise ApiProblem(404, "not-found", f"no note {note_id}")
    return gone


@router.get(
    "/notes",
    response_model=list[MemoryHit],
    summary="A brand's style notes",
    description="Newest first, `limit` (default 100) from `offset`: page on until a page "
    "holds fewer than `limit` (at most 1,000 a page).",
)
def list_notes(
    principal: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    brand: Annotated[str, Query(min_length=1, max_length=120)],
    limit: Annotated[int, Query(ge=1, le=1000), ASCII_INT] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000), ASCII_INT] = 0,
) -> list[MemoryHit]:
    row = crud.get_brand(session, tenant=principal.tenant, ref=brand)
    if row is None:
        raise ApiProblem(404, "not-found", f"no brand {brand!r}")
    return list_style_notes(
        open_memory(settings), tenant=principal.tenant, brand=row, limit=limit, offset=offset
    )


@router.delete("/notes/{note_id}", status_code=204, summary="Forget a style note")
def delete_note(
    note_id: Annotated[str, Path(pattern=r"^note-[0-9a-f]{32}$")],
    principal: Creator,
    session: SessionDep,
    settings: SettingsDep,
    brand: Annotated[str, Query(min_length=1, max_length=120)],
) -> Response:
    row = crud.get_brand(session, tenant=principal.tenant, ref=brand)
    if row is None:
        raise ApiProblem(404, "not-found", f"no brand {brand!r}")
    forget_note(open_memory(settings), session, tenant=principal.tenant, brand=row, note_id=note_id)
    return Response(status_code=204)
