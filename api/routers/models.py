"""The model catalog and which models are usable on this deployment."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from brandloop.agent.runner import catalog_models
from brandloop.api.deps import DatabaseDep, SettingsDep, Viewer
from brandloop.api.problems import PROBLEM_RESPONSES
from brandloop.domain import ModelSpec
from brandloop.policies.catalog import plannable

router = APIRouter(prefix="/models", tags=["models"], responses=PROBLEM_RESPONSES)


class ModelPublic(ModelSpec):
    usable: bool


@router.get("", response_model=list[ModelPublic], summary="The catalog")
async def list_models(principal: Viewer, settings: SettingsDep, db: DatabaseDep) -> list[BaseModel]:
    models = catalog_models(db)
    usable = {m.id for m in plannable(models, settings)}
    return [ModelPublic(**m.model_dump(), usable=m.id in usable) for m in models]
