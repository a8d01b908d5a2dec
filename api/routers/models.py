"""The model catalog and which models are usable on this deployment."""

from __future__ import annotations

from fastapi import APIRouter

from brandloop.agent.runner import catalog_models
from brandloop.api.deps import DatabaseDep, SettingsDep, Viewer
from brandloop.api.problems import PROBLEM_RESPONSES
from brandloop.policies.catalog import model_views
from brandloop.views import ModelView

router = APIRouter(prefix="/models", tags=["models"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=list[ModelView], summary="The catalog")
def list_models(principal: Viewer, settings: SettingsDep, db: DatabaseDep) -> list[ModelView]:
    """Every catalog model, and whether (or why not) this deployment can use it; the same
    model as ``brandloop models list --json``."""
    return model_views(catalog_models(db, settings), settings)
