"""Brands: the brand kit as JSON (the same model as the YAML files)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from brandloop.api.deps import Admin, SessionDep, Viewer
from brandloop.api.problems import PROBLEM_RESPONSES, ApiProblem
from brandloop.api.schemas import BrandPublic
from brandloop.domain import BrandKit
from brandloop.registry import crud
from brandloop.registry.models import BrandRow

router = APIRouter(prefix="/brands", tags=["brands"], responses=PROBLEM_RESPONSES)


def brand_public(row: BrandRow) -> BrandPublic:
    return BrandPublic(
        id=row.id,
        name=row.name,
        kit=crud.brand_kit(row),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@router.get("", response_model=list[BrandPublic], summary="The tenant's brands")
async def list_brands(principal: Viewer, session: SessionDep) -> list[BrandPublic]:
    return [brand_public(r) for r in crud.list_brands(session, tenant=principal.tenant)]


@router.post(
    "",
    status_code=201,
    response_model=BrandPublic,
    summary="Add a brand kit, or replace the kit of the brand with the same name",
    responses={200: {"model": BrandPublic, "description": "an existing brand was updated"}},
)
async def put_brand(
    kit: BrandKit, principal: Admin, session: SessionDep, response: Response
) -> BrandPublic:
    existed = crud.get_brand(session, tenant=principal.tenant, ref=kit.name) is not None
    row = crud.upsert_brand(session, tenant=principal.tenant, kit=kit, actor=principal.name)
    if existed:
        response.status_code = 200
    response.headers["Location"] = f"/v1/brands/{row.id}"
    return brand_public(row)


@router.get("/{ref}", response_model=BrandPublic, summary="A brand by id or name")
async def get_brand(ref: str, principal: Viewer, session: SessionDep) -> BrandPublic:
    row = crud.get_brand(session, tenant=principal.tenant, ref=ref)
    if row is None:
        raise ApiProblem(404, "not-found", f"no brand {ref!r}")
    return brand_public(row)
