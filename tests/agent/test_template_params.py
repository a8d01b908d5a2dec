"""A template's params are the defaults of every call made from it (docs/templates.md): the
non-quality ones go with each candidate to the provider, and its ``quality`` narrows the
planner's arms to that setting; the agent's own keys win. Checked at the OpenAI provider's HTTP
boundary (``httpx.MockTransport``)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from brandloop.agent.runner import run_generation
from brandloop.agent.writer import PromptWriter
from brandloop.domain import GenerationRequest, TemplateVersion
from brandloop.policies.catalog import image_price, load_catalog
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from brandloop.tools.providers.openai import OpenAIImagesProvider
from brandloop.tools.providers.procedural import render_preview
from brandloop.tools.providers.resilience import ProviderLimits, ResilientProvider
from brandloop.views import run_receipts
from tests.agent.helpers import CountingProvider, add_acme, allow

KEY = "sk-test-template-params-0002"
BODY = "{{ brief }}. {{ tone }} mood for {{ brand }}. {{ palette_clause }}."
CATALOG = {m.id: m for m in load_catalog()}
MINI = CATALOG["openai/gpt-image-1-mini"]
STUDIO = CATALOG["procedural/studio"]


def _template(db: Database, name: str, params: dict[str, Any]) -> str:
    with db.session() as session:
        crud.add_template_version(
            session,
            tenant="default",
            version=TemplateVersion(
                name=name, version=1, body=BODY, params=params, status="approved"
            ),
        )
    return f"{name}@1"


class OpenAIServer:
    """The OpenAI Images endpoint at its HTTP boundary: on-brand PNGs, every body kept."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        width, height = map(int, body["size"].split("x"))
        images = [
            render_preview(
                prompt=body["prompt"].partition("\nAvoid: ")[0],
                negative_prompt="",
                seed=len(self.bodies) * 16 + i,
                width=width,
                height=height,
                model="studio",
            )
            for i in range(body["n"])
        ]
        return httpx.Response(
            200,
            json={"data": [{"b64_json": base64.b64encode(png).decode()} for png in images]},
        )

    def provider(self) -> ResilientProvider:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return ResilientProvider(
            OpenAIImagesProvider(
                client, api_key=KEY, base_url="http://openai.test/v1", models=[MINI]
            ),
            ProviderLimits(max_attempts=1),
        )


async def _run(
    settings: Settings, db: Database, ref: str, server: OpenAIServer, procedural: Any
) -> Any:
    request = GenerationRequest(
        brief="a teal coffee cup on a cream table", brand=add_acme(settings, db),
        size="1024x1024", seed=4, count=2, template=ref, budget_usd=1.0,
    )  # fmt: skip
    return await run_generation(
        request,
        settings=settings,
        db=db,
        providers={"openai": server.provider(), "procedural": procedural},
        models=[STUDIO, MINI],
        use_memory=False,
        image_moderator=allow,
    )


async def test_the_request_body_carries_the_templates_quality_and_steps(
    settings: Settings, db: Database
) -> None:
    ref = _template(db, "hi-q", {"quality": "high", "steps": 30})
    server, procedural = OpenAIServer(), CountingProvider()
    result = await _run(settings, db, ref, server, procedural)
    # the template's quality narrows the arms to models that have it: not the procedural one
    assert not procedural.calls
    assert server.bodies
    for body in server.bodies:
        assert body["quality"] == "high" and body["steps"] == 30, body
        assert body["model"] == "gpt-image-1-mini"
    plan = next(d for d in result.decisions if d.action == "plan")
    assert "template hi-q@1 sets quality high" in plan.reason, plan.reason
    # priced as sent: the high setting's catalog price, planned and reserved alike
    high = image_price(MINI, width=1024, height=1024, quality="high")
    assert high == 0.036
    with db.session() as session:
        rows = crud.list_attempts(session, run_id=result.run_id)
        assert rows
        for row in rows:
            assert row.params == {"quality": "high", "steps": 30}, row.params
        receipts = run_receipts(
            session, run=crud.get_run(session, tenant="default", run_id=result.run_id)
        )
    assert result.images and len(receipts) == len(result.images)
    assert [r.params for r in receipts] == [{"quality": "high", "steps": 30}] * len(receipts)
    assert f"2× openai/gpt-image-1-mini@high (${high * 2:.3f}" in plan.reason, plan.reason


async def test_a_template_without_params_plans_as_before(settings: Settings, db: Database) -> None:
    ref = _template(db, "plain", {})
    server, procedural = OpenAIServer(), CountingProvider()
    result = await _run(settings, db, ref, server, procedural)
    assert all("steps" not in body for body in server.bodies)
    assert all("sets quality" not in d.reason for d in result.decisions)
    with db.session() as session:
        rows = crud.list_attempts(session, run_id=result.run_id)
    assert rows and all(set(row.params or {}) <= {"quality"} for row in rows)


async def test_a_repeat_of_a_run_with_template_params_replays_them_at_no_cost(
    settings: Settings, db: Database
) -> None:
    """docs/agent.md, repeat work: the params are part of the candidates the cache keys, so an
    identical request finds the first run's images and replays them - params included - at $0."""
    ref = _template(db, "hi-q", {"quality": "high", "steps": 30})
    server = OpenAIServer()
    first = await _run(settings, db, ref, server, CountingProvider())
    assert first.images and first.cost_usd > 0
    paid = len(server.bodies)
    second = await _run(settings, db, ref, server, CountingProvider())
    assert len(server.bodies) == paid, "no provider call for a repeat"
    assert second.cost_usd == 0 and all(image.cache_hit for image in second.images)
    assert any(d.action == "replay_cache" for d in second.decisions)
    with db.session() as session:
        rows = crud.list_attempts(session, run_id=second.run_id)
    assert rows and all(row.params == {"quality": "high", "steps": 30} for row in rows)


async def test_a_writers_identity_is_recorded_but_never_sent_to_the_backend(
    settings: Settings, db: Database
) -> None:
    """``params.writer`` credits an LLM-written prompt on the attempt and the receipt; the
    OpenAI endpoint, which refuses unknown fields, never sees it."""
    from tests.agent.test_writer import fake, variants_json

    ref = _template(db, "hi-q", {"quality": "high"})
    server = OpenAIServer()
    writer = PromptWriter(
        fake(variants_json("teal #0f766e, cream #fef3c7, espresso #4a2c2a coffee cup on a table"))
    )
    request = GenerationRequest(
        brief="a teal coffee cup on a cream table", brand=add_acme(settings, db),
        size="1024x1024", seed=4, count=2, template=ref, budget_usd=1.0,
    )  # fmt: skip
    result = await run_generation(
        request,
        settings=settings,
        db=db,
        providers={"openai": server.provider(), "procedural": CountingProvider()},
        models=[STUDIO, MINI],
        use_memory=False,
        image_moderator=allow,
        writer=writer,
    )
    assert server.bodies and all("writer" not in body for body in server.bodies), server.bodies
    with db.session() as session:
        credited = [
            row.params["writer"]
            for row in crud.list_attempts(session, run_id=result.run_id)
            if "writer" in row.params
        ]
    assert credited and all(w["provider"] for w in credited), credited
