"""Templates: versions, a side-by-side diff, labels and A/B weights, per-version outcome stats,
and add/submit/approve/reject/label under the governance rules (the /v1 template routes, called
as they are: the author never approves their own version, production is protected)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request, Response
from pydantic import ConfigDict, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from brandloop.agent.templates import ensure_shipped_templates, shipped_versions
from brandloop.api.deps import DatabaseDep, SessionDep, SettingsDep
from brandloop.api.routers.templates import (
    _template,
    add_version,
    review_version,
    set_label,
    submit_version,
    template_public,
)
from brandloop.api.schemas import (
    LabelUpdate,
    TemplateMetadataIn,
    TemplateReviewDecision,
    TemplateVersionCreate,
)
from brandloop.api.studio.web import (
    Approver,
    Creator,
    Csrf,
    FormPage,
    StudioError,
    StudioRoute,
    Viewer,
    form_on,
    render,
    see_other,
)
from brandloop.api.studio.wording import field_problem
from brandloop.domain import (
    MAX_MESSAGE_CHARS,
    MAX_REVIEW_NOTE_CHARS,
    TemplateVersion,
    is_blank,
)
from brandloop.errors import BadInputError
from brandloop.registry import crud
from brandloop.registry.models import AttemptRow, RunRow
from brandloop.templates.governance import (
    LABEL_PATTERN,
    deciders,
    list_templates,
    parse_label_spec,
    same_person,
    side_by_side,
    versions,
)
from brandloop.templates.governance import labels as template_labels
from brandloop.templates.sandbox import MAX_TEMPLATE_CHARS
from brandloop.templates.stats import VersionStats, template_stats

router = APIRouter(route_class=StudioRoute, include_in_schema=False)
Name = Annotated[str, Form(pattern=r"^[a-z0-9][a-z0-9_.-]{0,119}$")]
Version = Annotated[int, Form(ge=1, le=100_000)]


_stats: dict[tuple[str, str, str], tuple[tuple[object, ...], list[VersionStats]]] = {}


def cached_stats(session: Session, *, tenant: str, name: str) -> list[VersionStats]:
    """``template_stats``, recomputed only when the template's attempts, versions or labels
    change (a cheap aggregate says whether they did): the stats read every attempt's scores."""
    template = _template(session, tenant, name)
    attempts = session.execute(
        select(func.count(), func.max(AttemptRow.created_at))
        .join(RunRow, RunRow.id == AttemptRow.run_id)
        .where(
            RunRow.tenant == tenant, AttemptRow.template_ref.startswith(f"{name}@", autoescape=True)
        )
    ).one()
    fingerprint = (
        tuple(attempts),
        tuple((v.version, v.status) for v in versions(session, template=template)),
        tuple((lab.label, str(lab.weights)) for lab in template_labels(session, template=template)),
    )
    key = (repr(session.get_bind()), tenant, name)
    hit = _stats.get(key)
    if hit is not None and hit[0] == fingerprint:
        return hit[1]
    stats = template_stats(session, tenant=tenant, name=name)
    if len(_stats) > 1000:
        _stats.clear()
    _stats[key] = (fingerprint, stats)
    return stats


@router.get("/templates")
def templates(request: Request, user: Viewer, session: SessionDep) -> Response:
    ensure_shipped_templates(session, tenant=user.tenant)
    rows = [template_public(session, t) for t in list_templates(session, tenant=user.tenant)]
    context = {
        "title": "Templates",
        "templates": rows,
        "deciders": deciders(session, tenant=user.tenant),
    }
    return render(request, "templates.html", context)


@router.get("/templates/{name}")
def template_page(
    request: Request,
    name: str,
    user: Viewer,
    session: SessionDep,
    a: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    b: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> Response:
    row = _template(session, user.tenant, name)
    public = template_public(session, row)
    numbers = [v.version for v in public.versions]
    diff = None
    if a is not None and b is not None:
        if a not in numbers or b not in numbers:
            raise StudioError(404, f"{name} has versions {', '.join(map(str, numbers))}")
        diff = side_by_side(session, tenant=user.tenant, name=name, v1=a, v2=b)
    labels = public.label_weights  # as runs use them (governance.label_weights)
    context = {
        "title": f"Template {name}",
        "template": public,
        "labels": labels,
        "stats": {s.version: s for s in cached_stats(session, tenant=user.tenant, name=name)},
        "diff": diff,
        "a": a if a is not None else (numbers[-2] if len(numbers) > 1 else numbers[-1]),
        "b": b if b is not None else numbers[-1],
        "max_template_chars": MAX_TEMPLATE_CHARS,
        # four eyes: the versions this user wrote, which they may neither approve nor reject
        # (governance refuses it with a 409; the page says so instead of offering the buttons)
        "own_versions": {
            v.version for v in public.versions if same_person(v.author, user.api_principal.name)
        },
    }
    return render(request, "template.html", context)


#: the New draft version form of a template's page
NEW_DRAFT = FormPage(
    "/templates/{name}",
    labels={"body": "Body", "negative_body": "Negative body", "message": "Message"},
    ids={"message": "vmessage"},
    field="body",
)
#: the Move label form of a template's page
MOVE_LABEL = FormPage(
    "/templates/{name}", labels={"label": "Label", "weights": "Versions"}, field="weights"
)
#: what the Versions field of Move label takes (never what was typed: it may hold a secret)
WEIGHTS_WORDS = (
    "takes VERSION or VERSION=WEIGHT,... (e.g. 3 or 2=0.9,3=0.1): each version a whole "
    "number from 1 in ASCII digits, once, each weight a number from 0 to 1,000,000 with one "
    "above 0, no spaces"
)


class _CarriedMetadata(TemplateMetadataIn):
    """A stored version's metadata carried into its next one whole: a template file may hold
    keys besides the three the API's schema names (``TemplateMetadata`` allows them), and a
    draft made in the studio keeps them as a new version from the file would. The named
    fields are checked as the API checks them; the stored row was checked when it was made."""

    model_config = ConfigDict(extra="allow")


def _latest(session: Session, *, tenant: str, name: str) -> TemplateVersion | None:
    """The version the New draft form starts from: the template's latest (None when there is
    no such template: ``add_version`` then answers 404)."""
    row = crud.get_template(session, tenant=tenant, name=name)
    if row is None:  # a shipped template no page has seeded yet: its version 1
        return next((v for v, _ in shipped_versions() if v.name == name), None)
    numbers = versions(session, template=row)
    return crud.template_version_model(row, numbers[-1]) if numbers else None


@router.post("/templates/{name}/versions")
@form_on(NEW_DRAFT)
def new_version(
    name: str,
    user: Creator,
    session: SessionDep,
    settings: SettingsDep,
    db: DatabaseDep,
    _: Csrf,
    body: Annotated[str, Form(min_length=1, max_length=MAX_TEMPLATE_CHARS)],
    # the engine's limit for either text, as the API and CLI take it (4,000 here before
    # session 35 refused a negative body they store)
    negative_body: Annotated[str, Form(max_length=MAX_TEMPLATE_CHARS)] = "",
    message: Annotated[str, Form(max_length=MAX_MESSAGE_CHARS)] = "",
) -> Response:
    """The form edits the latest version (it shows both of its bodies to start from), so the
    new draft takes that version's params, model hints and metadata as they are: only the
    bodies and the message are typed. Before session 35 they were dropped (``{}``, ``[]``)."""
    latest = _latest(session, tenant=user.tenant, name=name)
    made = add_version(
        name,
        TemplateVersionCreate(
            body=body,
            negative_body=negative_body,
            message=message,
            params=dict(latest.params) if latest else {},
            model_hints=list(latest.model_hints) if latest else [],
            metadata=_CarriedMetadata.model_validate(latest.metadata if latest else {}),
        ),
        user.api_principal,
        session,
        settings,
        db,
    )
    return see_other(f"/templates/{name}?b={made.version}")


@router.post("/templates/{name}/versions/{version}/submit")
def submit(name: str, version: int, user: Creator, session: SessionDep, _: Csrf) -> Response:
    submit_version(name, version, user.api_principal, session, None)
    return see_other(f"/templates/{name}")


REVIEW_VERSION = FormPage(
    "/templates/{name}",
    labels={"note": "Why reject v{version}?"},
    ids={"note": "reject-note-{version}"},
    field="note",
)


@router.post("/templates/{name}/versions/{version}/review")
@form_on(REVIEW_VERSION)
def review(
    name: str,
    version: int,
    user: Approver,
    session: SessionDep,
    _: Csrf,
    decision: Annotated[Literal["approve", "reject"], Form()],
    note: Annotated[str, Form(max_length=MAX_REVIEW_NOTE_CHARS)] = "",
) -> Response:
    if decision == "reject" and is_blank(note):  # what the browser's `required` also asks
        raise StudioError(422, "is blank: say why; the author reads it", field="note")
    body = TemplateReviewDecision(decision=decision, note=note)
    review_version(name, version, body, user.api_principal, session)
    return see_other(f"/templates/{name}")


@router.post("/templates/{name}/labels")
@form_on(MOVE_LABEL)
def label(
    name: str,
    user: Approver,
    session: SessionDep,
    _: Csrf,
    label: Annotated[str, Form(pattern=LABEL_PATTERN.pattern)],
    weights: Annotated[str, Form(min_length=1, max_length=200)],
) -> Response:
    """``weights`` as the CLI writes them (``3`` or ``2=0.9,3=0.1``), each from 0 to
    1,000,000 with one above 0, as ``PUT /v1/templates/{name}/labels/{label}`` takes them."""
    try:
        update = LabelUpdate(weights=parse_label_spec(weights, zero_allowed=True))
    except BadInputError:  # its words repeat what was typed
        raise StudioError(422, WEIGHTS_WORDS, field="weights") from None
    except ValidationError as exc:  # what the API's schema refuses: versions past 999999...
        raise StudioError(422, field_problem(exc.errors())) from None
    set_label(name, label, update, user.api_principal, session)
    return see_other(f"/templates/{name}")
