"""Brands: the brand kit as JSON (the same model as the YAML files)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from brandloop.api.deps import Admin, SessionDep, Viewer
from brandloop.api.problems import PROBLEM_RESPONSES, ApiProblem, problems
from brandloop.domain import BRAND_NAME, BrandKit, check_brand_name
from brandloop.registry import crud
from brandloop.views import BrandView, brand_view

router = APIRouter(prefix="/brands", tags=["brands"], responses=PROBLEM_RESPONSES)

BRAND_LOCATION = {
    "Location": {
        "description": "the brand, `/v1/brands/{id}`",
        "required": True,
        "schema": {"type": "string"},
    }
}


@router.get("", response_model=list[BrandView], summary="The tenant's brands")
def list_brands(principal: Viewer, session: SessionDep) -> list[BrandView]:
    return [brand_view(r) for r in crud.list_brands(session, tenant=principal.tenant)]


@router.post(
    "",
    status_code=201,
    response_model=BrandView,
    summary="Add a brand kit, or replace the kit of the brand with the same name",
    description="Brand names compare ignoring case and separators (`acme coffee`, "
    "`ACME_COFFEE` and `Acme Coffee` are one brand): a kit under another spelling of a stored "
    "brand's name replaces that brand's kit (200), and the brand keeps its spelling. A name two "
    "stored brands share (possible only in data from before that rule) is 409.",
    responses={
        200: {
            "model": BrandView,
            "description": "an existing brand was updated",
            "headers": BRAND_LOCATION,
        },
        201: {"description": "a new brand", "headers": BRAND_LOCATION},
        **problems(409),
    },
)
def put_brand(
    kit: BrandKit, principal: Admin, session: SessionDep, response: Response
) -> BrandView:
    stored = crud.store_brand(session, tenant=principal.tenant, kit=kit, actor=principal.name)
    if stored.change != "created":
        response.status_code = 200
    response.headers["Location"] = f"/v1/brands/{stored.row.id}"
    return brand_view(stored.row)


@router.get(
    "/{ref}",
    response_model=BrandView,
    summary="A brand by id or name",
    description="A name is compared ignoring case and separators; one two stored brands "
    "share is 409, naming both ids.",
    responses=problems(409),
)
def get_brand(ref: str, principal: Viewer, session: SessionDep) -> BrandView:
    row = crud.get_brand(session, tenant=principal.tenant, ref=ref)
    if row is None:
        raise ApiProblem(404, "not-found", f"no brand {ref!r}")
    return brand_view(row)


class BrandRename(BaseModel):
    """A brand's new name (its id, runs and memory stay)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        min_length=1, max_length=80, pattern=BRAND_NAME, description="the new name (as a kit's)"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_brand_name(value)  # one spelt like a brand id is 422, as in a kit


@router.post(
    "/{ref}/rename",
    response_model=BrandView,
    summary="Give a brand another name",
    description="The brand (its id, or a name no other brand shares) keeps its id, runs, "
    "memory and outcome counts; its policy file is the new name's slug. A name whose key "
    "(case and separators ignored) another brand has is 409; this is how two brands stored "
    "under one name before names ignored case are told apart: rename one by its id. The same "
    "as `brandloop brands rename`.",
    responses=problems(409),
)
def rename_brand(ref: str, body: BrandRename, principal: Admin, session: SessionDep) -> BrandView:
    row = crud.rename_brand(
        session, tenant=principal.tenant, ref=ref, name=body.name, actor=principal.name
    )
    return brand_view(row)
