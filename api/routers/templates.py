"""Templates: read versions and labels, add a draft version, review it, move labels.

Thin over the registry's template functions (``brandloop.registry.crud``, ``agent.templates``);
the shipped templates are seeded for the tenant on first read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent.templates import ensure_shipped_templates
from api.deps import Approver, Creator, SessionDep, Viewer
from api.problems import PROBLEM_RESPONSES, ApiProblem
from api.schemas import LabelUpdate, ReviewDecision, TemplateVersionCreate
from brandloop.domain import PromptTemplate, TemplateVersion
from brandloop.registry import crud
from brandloop.registry.models import TemplateLabelRow, TemplateRow, TemplateVersionRow

router = APIRouter(prefix="/templates", tags=["templates"], responses=PROBLEM_RESPONSES)
Name = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,119}$")]
Label = Annotated[str, Path(pattern=r"^[a-z0-9_-]{1,64}$")]


def _template(session: Session, tenant: str, name: str) -> TemplateRow:
    ensure_shipped_templates(session, tenant=tenant)
    row = crud.get_template(session, tenant=tenant, name=name)
    if row is None:
        raise ApiProblem(404, "not-found", f"no template {name!r}")
    return row


def template_public(session: Session, row: TemplateRow) -> PromptTemplate:
    versions = session.scalars(
        select(TemplateVersionRow)
        .where(TemplateVersionRow.template_id == row.id)
        .order_by(TemplateVersionRow.version)
    )
    labels = session.scalars(select(TemplateLabelRow).where(TemplateLabelRow.template_id == row.id))
    return PromptTemplate(
        name=row.name,
        description=row.description,
        versions=[crud.template_version_model(row, v) for v in versions],
        labels={
            label.label: int(max(label.weights, key=lambda k: label.weights[k])) for label in labels
        },
    )


@router.get("", response_model=list[PromptTemplate], summary="The tenant's templates")
async def list_templates(principal: Viewer, session: SessionDep) -> list[PromptTemplate]:
    ensure_shipped_templates(session, tenant=principal.tenant)
    rows = session.scalars(
        select(TemplateRow).where(TemplateRow.tenant == principal.tenant).order_by(TemplateRow.name)
    )
    return [template_public(session, r) for r in rows]


@router.get(
    "/{name}", response_model=PromptTemplate, summary="A template with its versions and labels"
)
async def get_template(name: Name, principal: Viewer, session: SessionDep) -> PromptTemplate:
    return template_public(session, _template(session, principal.tenant, name))


@router.post(
    "/{name}/versions",
    status_code=201,
    response_model=TemplateVersion,
    summary="Add a draft version",
)
async def add_version(
    name: Name, body: TemplateVersionCreate, principal: Creator, session: SessionDep
) -> TemplateVersion:
    ensure_shipped_templates(session, tenant=principal.tenant)
    template = crud.get_template(session, tenant=principal.tenant, name=name)
    latest = 0
    if template is not None:
        latest = int(
            session.scalar(
                select(func.max(TemplateVersionRow.version)).where(
                    TemplateVersionRow.template_id == template.id
                )
            )
            or 0
        )
    version = TemplateVersion(
        name=name,
        version=latest + 1,
        body=body.body,
        negative_body=body.negative_body,
        params=body.params,
        model_hints=body.model_hints,
        author=principal.key_id,
        message=body.message,
        status="draft",
    )
    row = crud.add_template_version(
        session, tenant=principal.tenant, version=version, description=body.description
    )
    crud.audit(
        session,
        tenant=principal.tenant,
        actor=principal.key_id,
        action="template.version_added",
        subject_type="template",
        subject_id=version.ref,
    )
    template = session.get(TemplateRow, row.template_id)
    assert template is not None
    return crud.template_version_model(template, row)


@router.post(
    "/{name}/versions/{version}/review",
    response_model=TemplateVersion,
    summary="Approve or reject a version",
)
async def review_version(
    name: Name,
    version: Annotated[int, Path(ge=1, le=100_000)],
    body: ReviewDecision,
    principal: Approver,
    session: SessionDep,
) -> TemplateVersion:
    template = _template(session, principal.tenant, name)
    row = crud.get_template_version(session, template_id=template.id, version=version)
    if row is None:
        raise ApiProblem(404, "not-found", f"no version {name}@{version}")
    row.status = "approved" if body.decision == "approve" else "rejected"
    crud.audit(
        session,
        tenant=principal.tenant,
        actor=principal.key_id,
        action=f"template.{row.status}",
        subject_type="template",
        subject_id=f"{name}@{version}",
        detail={"note": body.note},
    )
    session.flush()
    return crud.template_version_model(template, row)


@router.put(
    "/{name}/labels/{label}",
    response_model=PromptTemplate,
    summary="Point a label at versions (weights split traffic)",
)
async def set_label(
    name: Name, label: Label, body: LabelUpdate, principal: Approver, session: SessionDep
) -> PromptTemplate:
    template = _template(session, principal.tenant, name)
    for key, weight in body.weights.items():
        if not key.isdigit() or weight < 0:
            raise ApiProblem(
                422, "bad-input", "weights map version numbers to non-negative weights"
            )
        row = crud.get_template_version(session, template_id=template.id, version=int(key))
        if row is None:
            raise ApiProblem(404, "not-found", f"no version {name}@{key}")
        if row.status != "approved" and weight > 0:
            raise ApiProblem(
                409,
                "conflict",
                f"{name}@{key} is {row.status}; only approved versions may take traffic",
            )
    if sum(body.weights.values()) <= 0:
        raise ApiProblem(422, "bad-input", "at least one weight must be positive")
    crud.set_label(
        session, template_id=template.id, label=label, weights=body.weights, actor=principal.key_id
    )
    crud.audit(
        session,
        tenant=principal.tenant,
        actor=principal.key_id,
        action="template.label_set",
        subject_type="template",
        subject_id=f"{name}:{label}",
        detail={"weights": body.weights},
    )
    return template_public(session, template)
