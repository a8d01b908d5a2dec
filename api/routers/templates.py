"""Templates: read versions and labels, add a draft version, submit, review, move labels.

Thin over the review rules in ``brandloop.templates.governance`` (the same the CLI uses): the
author never approves their own version, and ``production`` only points at approved versions and
only an approver moves it. A step the rules refuse answers 409. The shipped templates are seeded
for the tenant on first read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Path
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from brandloop.agent.nodes.intake import redacted_text
from brandloop.agent.runner import catalog_models
from brandloop.agent.templates import ensure_shipped_templates
from brandloop.api.auth import Principal
from brandloop.api.deps import Approver, Creator, DatabaseDep, SessionDep, SettingsDep, Viewer
from brandloop.api.params import VERSION_NUMBER
from brandloop.api.problems import PROBLEM_RESPONSES, ApiProblem, problems
from brandloop.api.schemas import (
    LabelUpdate,
    TemplateReviewDecision,
    TemplateSubmit,
    TemplateVersionCreate,
)
from brandloop.domain import PromptTemplate, TemplateVersion
from brandloop.registry import crud
from brandloop.registry.models import TemplateRow, TemplateVersionRow
from brandloop.templates import governance
from brandloop.templates.governance import (
    LABEL_PATTERN,
    GovernanceError,
    TemplateMetadata,
    TemplateSpec,
)
from brandloop.tools.moderation.keys import redact_keys
from brandloop.tools.moderation.minors import template_screen

T = TypeVar("T")
#: the commit message of a version added over HTTP without one
NO_MESSAGE = "(no message)"

router = APIRouter(prefix="/templates", tags=["templates"], responses=PROBLEM_RESPONSES)
Name = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,119}$")]
Label = Annotated[str, Path(pattern=LABEL_PATTERN.pattern)]


def _template(session: Session, tenant: str, name: str) -> TemplateRow:
    ensure_shipped_templates(session, tenant=tenant)
    row = crud.get_template(session, tenant=tenant, name=name)
    if row is None:
        raise ApiProblem(404, "not-found", f"no template {name!r}")
    return row


def _single(weights: dict[str, float]) -> int | None:
    """The version a label sends all its traffic to, or None when it splits it."""
    with_traffic = [version for version, weight in weights.items() if weight > 0]
    return int(with_traffic[0]) if len(with_traffic) == 1 else None


def template_public(session: Session, row: TemplateRow) -> PromptTemplate:
    versions = session.scalars(
        select(TemplateVersionRow)
        .where(TemplateVersionRow.template_id == row.id)
        .order_by(TemplateVersionRow.version)
    )
    # as runs use them: an entry older code left on a rejected version is not shown
    weights = governance.label_weights(session, template=row)
    return PromptTemplate(
        name=row.name,
        description=row.description,
        versions=[crud.template_version_model(row, v) for v in versions],
        # the one version that gets all the traffic as its number (a version weighted 0 gets
        # none); a split as its weights, never as one of its versions
        labels={label: _single(split) or split for label, split in weights.items()},
        label_weights=weights,
    )


@router.get("", response_model=list[PromptTemplate], summary="The tenant's templates")
def list_templates(principal: Viewer, session: SessionDep) -> list[PromptTemplate]:
    ensure_shipped_templates(session, tenant=principal.tenant)
    rows = session.scalars(
        select(TemplateRow).where(TemplateRow.tenant == principal.tenant).order_by(TemplateRow.name)
    )
    return [template_public(session, r) for r in rows]


@router.get(
    "/{name}", response_model=PromptTemplate, summary="A template with its versions and labels"
)
def get_template(name: Name, principal: Viewer, session: SessionDep) -> PromptTemplate:
    return template_public(session, _template(session, principal.tenant, name))


def _is_approver(principal: Principal) -> bool:
    return principal.role in {"approver", "admin"}


def _governed(call: Callable[[], T]) -> T:
    """Run a governance step; a step the review rules refuse is a 409 conflict."""
    try:
        return call()
    except GovernanceError as exc:
        raise ApiProblem(409, "conflict", str(exc)) from None


def _version_step(
    session: Session,
    principal: Principal,
    name: str,
    version: int,
    step: Callable[..., TemplateVersionRow],
    **extra: Any,
) -> TemplateVersion:
    """One review step on NAME@VERSION by the caller, as the review rules allow it; its note
    is stored with its personal data and key-shaped tokens redacted, as a brief is."""
    if isinstance(extra.get("note"), str):
        extra["note"] = redacted_text(extra["note"])
    template = _template(session, principal.tenant, name)
    row = _governed(
        lambda: step(
            session,
            tenant=principal.tenant,
            name=name,
            version=version,
            actor=principal.name,
            **extra,
        )
    )
    return crud.template_version_model(template, row)


@router.post(
    "/{name}/versions",
    status_code=201,
    response_model=TemplateVersion,
    summary="Add a draft version (creating the template with its first version)",
    responses=problems(409),
)
def add_version(
    name: Name,
    body: TemplateVersionCreate,
    principal: Creator,
    session: SessionDep,
    settings: SettingsDep,
    db: DatabaseDep,
) -> TemplateVersion:
    # seeded in a transaction of its own: a refusal below is audited in its own transaction
    # too, and on SQLite it would wait on this one's write lock
    with Session(bind=session.get_bind()) as seeding:
        ensure_shipped_templates(seeding, tenant=principal.tenant)
        seeding.commit()
    try:
        spec = TemplateSpec(
            description=body.description,
            body=body.body,
            negative_body=body.negative_body,
            params=body.params,
            model_hints=body.model_hints,
            metadata=TemplateMetadata(**body.metadata.model_dump()),
            message=body.message,
        )
    except ValidationError as exc:
        raise ApiProblem(422, "bad-input", governance.describe_validation(exc)) from None
    # the template is created with its first version; a blank message of a later one says so,
    # since the schema takes a blank one (the CLI asks for -m)
    row = governance.add_version(
        session,
        tenant=principal.tenant,
        name=name,
        spec=spec,
        actor=principal.name,
        no_message=NO_MESSAGE,
        screen=template_screen,
        models=[model.id for model in catalog_models(db, settings)],
        key_scan=redact_keys,
    )
    return crud.template_version_model(_template(session, principal.tenant, name), row)


@router.post(
    "/{name}/versions/{version}/submit",
    response_model=TemplateVersion,
    summary="Submit a draft for review (draft → in_review), with an optional note",
    description="The body is optional: `{note}` for the reviewer (at most 2,000 characters), "
    "stored with the submission as `brandloop templates submit --note` stores it; an unknown "
    "member or a longer note is a 422.",
    responses=problems(409),
)
def submit_version(
    name: Name,
    version: Annotated[int, Path(ge=1, le=100_000), VERSION_NUMBER],
    principal: Creator,
    session: SessionDep,
    body: Annotated[TemplateSubmit | None, Body()] = None,
) -> TemplateVersion:
    return _version_step(
        session,
        principal,
        name,
        version,
        governance.submit,
        note=body.note if body is not None else "",
        is_approver=_is_approver(principal),
    )


@router.post(
    "/{name}/versions/{version}/review",
    response_model=TemplateVersion,
    summary="Approve or reject a version in review (never one's own)",
    responses=problems(409),
)
def review_version(
    name: Name,
    version: Annotated[int, Path(ge=1, le=100_000), VERSION_NUMBER],
    body: TemplateReviewDecision,
    principal: Approver,
    session: SessionDep,
) -> TemplateVersion:
    decide = governance.approve if body.decision == "approve" else governance.reject
    return _version_step(
        session, principal, name, version, decide, note=body.note, is_approver=True
    )


@router.put(
    "/{name}/labels/{label}",
    response_model=PromptTemplate,
    summary="Point a label at versions (weights split traffic); production is protected",
    responses=problems(409),
)
def set_label(
    name: Name, label: Label, body: LabelUpdate, principal: Approver, session: SessionDep
) -> PromptTemplate:
    template = _template(session, principal.tenant, name)
    # version numbers to weights 0..1,000,000 (the schema's); at least one above 0 (its ``not``)
    if sum(body.weights.values()) <= 0:
        raise ApiProblem(422, "bad-input", "at least one weight must be positive")
    _governed(
        lambda: governance.move_label(
            session,
            tenant=principal.tenant,
            name=name,
            label=label,
            weights=body.weights,
            actor=principal.name,
            is_approver=_is_approver(principal),
        )
    )
    return template_public(session, template)
