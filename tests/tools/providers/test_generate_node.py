"""The generate node's provider calls through a whole run: batching candidates that differ only
in seed, seeds from the backend, post-processing to the asked size, garbage as an error."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from PIL import Image

from brandloop.agent.runner import run_generation
from brandloop.domain import GenerationRequest
from brandloop.policies.brandkit import load_brand_kit
from brandloop.policies.catalog import load_catalog
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from brandloop.tools.providers.a1111 import A1111Provider
from brandloop.tools.providers.procedural import render_preview
from brandloop.tools.providers.resilience import ProviderLimits, ResilientProvider
from tests.tools.providers.conftest import client_for

BRIEF = "A calm morning ritual, a teal coffee cup on cream linen, espresso brown accents"


@pytest.fixture
def acme(settings: Settings, db: Database, acme_kit_path: Path) -> str:
    with db.session() as session:
        crud.upsert_brand(session, tenant="default", kit=load_brand_kit(acme_kit_path))
    return "Acme Coffee"


class FakeWebUI:
    """AUTOMATIC1111's txt2img, drawing with brandloop's preview renderer; it may make a
    different size than asked (``side``) or answer garbage."""

    def __init__(self, *, side: int | None = None, garbage: bool = False) -> None:
        self.bodies: list[dict] = []
        self.side, self.garbage = side, garbage

    def __call__(self, request: httpx.Request) -> httpx.Response:
        import base64

        body = json.loads(request.content)
        self.bodies.append(body)
        # the WebUI reports the checkpoint it rendered with; this one has the one asked for
        loaded = {
            "sd_model_name": body.get("override_settings", {}).get("sd_model_checkpoint"),
            "sd_model_hash": "31e35c80fc",
        }
        if self.garbage:
            return httpx.Response(200, json={"images": ["aGVsbG8="], "info": json.dumps(loaded)})
        seeds = [body["seed"] + i for i in range(body["batch_size"])]
        width, height = (self.side, self.side) if self.side else (body["width"], body["height"])
        images = [
            base64.b64encode(
                render_preview(
                    prompt=body["prompt"],
                    negative_prompt=body["negative_prompt"],
                    seed=s,
                    width=width,
                    height=height,
                    model="studio",
                )
            ).decode()
            for s in seeds
        ]
        info = json.dumps({"seed": seeds[0], "all_seeds": seeds, **loaded})
        return httpx.Response(200, json={"images": images, "parameters": {}, "info": info})


def a1111(fake: FakeWebUI) -> dict:
    adapter = A1111Provider(
        client_for(fake), base_url="http://127.0.0.1:7860", models=load_catalog()
    )
    return {"a1111": ResilientProvider(adapter, ProviderLimits(max_attempts=1))}


#: Three consecutive seeds that end at the top of the providers' range: still one call.
TOP = 2**32 - 3


def models() -> list:
    return [m for m in load_catalog() if m.id == "a1111/sdxl-base"]


async def test_candidates_differing_only_in_seed_are_one_call(
    settings: Settings, db: Database, acme: str
) -> None:
    fake = FakeWebUI()
    request = GenerationRequest(brief=BRIEF, brand=acme, count=3, size="256x256", seed=TOP)
    result = await run_generation(
        request, settings=settings, db=db, providers=a1111(fake), models=models(), use_memory=False
    )
    assert fake.bodies[0]["batch_size"] == 3 and fake.bodies[0]["seed"] == TOP
    with db.session() as session:
        attempts = crud.list_attempts(session, run_id=result.run_id)
        first = sorted((a for a in attempts if a.iteration == 1), key=lambda a: a.seed_requested)
        assert [a.seed_returned for a in first] == [TOP, TOP + 1, TOP + 2]
        assert len({a.idempotency_key for a in first}) == 3  # each attempt keeps its own key
        assert all(a.cost_usd == pytest.approx(0.002) for a in first)  # the call's cost, shared
        events = crud.list_events(session, run_id=result.run_id)
        call = next(e.payload for e in events if e.kind == "provider_call")
        assert len(call["attempts"]) == 3 and call["idempotency_key"].startswith("bl-b-")


async def test_an_image_of_another_size_is_fitted_to_the_asked_size(
    settings: Settings, db: Database, acme: str, seed: int
) -> None:
    fake = FakeWebUI(side=300)
    request = GenerationRequest(brief=BRIEF, brand=acme, count=1, size="256x128", seed=seed)
    result = await run_generation(
        request, settings=settings, db=db, providers=a1111(fake), models=models(), use_memory=False
    )
    with db.session() as session:
        attempt = crud.list_attempts(session, run_id=result.run_id)[0]
        artifact = crud.get_artifact(session, tenant="default", sha256=attempt.artifact_sha256)
        assert artifact is not None
        with Image.open(artifact.path) as image:
            assert image.size == (256, 128)


async def test_garbage_from_the_backend_is_an_error_outcome_not_a_crash(
    settings: Settings, db: Database, acme: str, seed: int
) -> None:
    fake = FakeWebUI(garbage=True)
    request = GenerationRequest(brief=BRIEF, brand=acme, count=1, size="256x256", seed=seed)
    result = await run_generation(
        request, settings=settings, db=db, providers=a1111(fake), models=models(), use_memory=False
    )
    assert result.status == "failed" and not result.images
    with db.session() as session:
        attempts = crud.list_attempts(session, run_id=result.run_id)
        assert attempts and all(a.outcome == "error" for a in attempts)
        assert "does not decode" in (attempts[0].error or "")
