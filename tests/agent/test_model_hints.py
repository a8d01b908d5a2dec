"""The planner honours a template's model_hints when any hinted model is usable."""

from __future__ import annotations

from brandloop.agent.runner import run_generation
from brandloop.domain import GenerationRequest, TemplateVersion
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.agent.helpers import CountingProvider, add_acme, allow

BODY = "{{ brief }}. {{ palette_clause }}."


def _template(db: Database, name: str, hints: list[str]) -> str:
    with db.session() as session:
        crud.add_template_version(
            session,
            tenant="default",
            version=TemplateVersion(
                name=name, version=1, body=BODY, model_hints=hints, status="approved"
            ),
        )
    return f"{name}@1"


async def test_hinted_models_are_the_only_ones_planned(settings: Settings, db: Database) -> None:
    brand = add_acme(settings, db)
    ref = _template(db, "studio-only", ["procedural/studio"])
    provider = CountingProvider()
    result = await run_generation(
        GenerationRequest(
            brief="a teal cup", brand=brand, size="256x256", seed=2, template=ref, count=2
        ),
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
        image_moderator=allow,
    )
    assert provider.calls and {c.model for c in provider.calls} == {"studio"}
    plan = next(d for d in result.decisions if d.action == "plan")
    assert "template studio-only@1 hints procedural/studio" in plan.reason


async def test_hints_nobody_can_serve_are_ignored(settings: Settings, db: Database) -> None:
    brand = add_acme(settings, db)
    ref = _template(db, "elsewhere", ["openai/gpt-image-1"])
    provider = CountingProvider()
    result = await run_generation(
        GenerationRequest(brief="a teal cup", brand=brand, size="256x256", seed=2, template=ref),
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
        image_moderator=allow,
    )
    assert provider.calls, "the run went on with the usable models"
    assert all("hints" not in d.reason for d in result.decisions if d.node == "plan")
