"""Batching candidates, fitting requests to a model, post-processing sizes, the catalog."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from brandloop.domain import Candidate, ModelSpec
from brandloop.policies.catalog import (
    configured_providers,
    image_price,
    load_catalog,
    nearest_aspect,
    nearest_size,
    plannable,
    usage_cost,
)
from brandloop.providers import GeneratedImage
from brandloop.settings import Settings
from brandloop.tools.providers.batching import batch_candidates, batch_key, build_request
from brandloop.tools.providers.postprocess import fit
from tests.tools.providers.conftest import png


def spec(**overrides) -> ModelSpec:
    base = {
        "id": "x/m",
        "provider": "x",
        "model": "m",
        "price_per_image_usd": 0.01,
        "max_images_per_call": 4,
        "supports_seed": True,
    }
    return ModelSpec.model_validate(base | overrides)


def cand(i: int, seed: int, prompt: str = "p", model: str = "x/m") -> Candidate:
    return Candidate(
        id=f"c{i}", template="t@1", prompt=prompt, model=model, seed=seed, width=512, height=512
    )


def test_candidates_differing_only_in_consecutive_seeds_share_a_call() -> None:
    model = spec()
    cands = [cand(0, 10), cand(1, 11), cand(2, 12), cand(3, 13), cand(4, 14), cand(5, 20)]
    batches = batch_candidates(cands, lambda _: model)
    assert [[c.id for c in b] for b in batches] == [
        ["c0", "c1", "c2", "c3"],  # capped at max_images_per_call
        ["c4"],
        ["c5"],  # seed 20 does not follow 14
    ]


def test_without_seed_support_any_seeds_batch_but_prompts_do_not_mix() -> None:
    model = spec(supports_seed=False, max_images_per_call=10)
    cands = [cand(0, 3), cand(1, 99, prompt="q"), cand(2, 7), cand(3, 1)]
    batches = batch_candidates(cands, lambda _: model)
    assert [[c.id for c in b] for b in batches] == [["c0", "c2", "c3"], ["c1"]]


def test_one_image_per_call_models_never_batch() -> None:
    model = spec(max_images_per_call=1)
    batches = batch_candidates([cand(0, 1), cand(1, 2)], lambda _: model)
    assert len(batches) == 2


def test_batch_key_is_the_candidates_own_or_derived() -> None:
    assert batch_key(["bl-a"]) == "bl-a"
    assert batch_key(["bl-a", "bl-b"]).startswith("bl-b-")
    assert batch_key(["bl-a", "bl-b"]) != batch_key(["bl-a", "bl-c"])


def test_build_request_fits_the_model() -> None:
    openai = next(m for m in load_catalog() if m.id == "openai/gpt-image-1")
    c = Candidate(
        id="c0",
        template="t@1",
        prompt="a cup",
        negative_prompt="neon green",
        model=openai.id,
        seed=5,
        width=1280,
        height=720,
        params={"quality": "high", "background": "opaque"},
    )
    request = build_request(openai, [c, c], idempotency_key="bl-x")
    assert (request.width, request.height) == (1536, 1024)  # nearest supported shape
    assert request.seed is None  # the model has no seed
    assert request.negative_prompt == "" and request.prompt.endswith("Avoid: neon green")
    assert request.count == 2 and request.quality == "high"
    assert request.params == {"background": "opaque"}
    assert request.idempotency_key == "bl-x"


def test_build_request_uses_aspect_ratios_for_stability() -> None:
    core = next(m for m in load_catalog() if m.id == "stability/core")
    c = cand(0, 5, model=core.id).model_copy(update={"width": 1280, "height": 720})
    request = build_request(core, [c], idempotency_key="k")
    assert request.aspect_ratio == "16:9" and request.seed == 5


@pytest.mark.parametrize(
    ("w", "h", "expected"),
    [
        (1024, 1024, (1024, 1024)),
        (512, 512, (1024, 1024)),
        (1920, 1080, (1536, 1024)),
        (720, 1280, (1024, 1536)),
    ],
)
def test_nearest_size(w: int, h: int, expected: tuple[int, int]) -> None:
    openai = next(m for m in load_catalog() if m.id == "openai/gpt-image-1")
    assert nearest_size(openai, w, h) == expected


def test_any_size_models_keep_the_size_and_pixel_models_have_no_aspect() -> None:
    assert nearest_size(spec(), 333, 777) == (333, 777)
    assert nearest_aspect(spec(), 333, 777) is None
    assert nearest_aspect(spec(aspect_ratios=["1:1", "9:16", "2:3"]), 720, 1280) == "9:16"


def test_fit_crops_and_resizes_to_the_asked_size() -> None:
    image = GeneratedImage(data=png(1536, 1024), width=1536, height=1024, seed=3)
    fitted = fit(image, 640, 640)
    with Image.open(io.BytesIO(fitted.data)) as decoded:
        assert decoded.size == (640, 640)
    assert fitted.seed == 3 and fitted.format == "png"
    same = GeneratedImage(data=b"untouched", width=8, height=8)
    assert fit(same, 8, 8) is same


def test_prices_by_size_and_quality() -> None:
    openai = next(m for m in load_catalog() if m.id == "openai/gpt-image-1")
    assert image_price(openai, width=1024, height=1024) == 0.042  # default quality
    assert image_price(openai, width=1536, height=1024, quality="high") == 0.25
    assert image_price(spec(), width=1, height=1) == 0.01
    assert usage_cost(openai, {"output_tokens": "x"}) is None
    assert usage_cost(spec(), {"output_tokens": 10}) is None
    assert usage_cost(openai, {"input_tokens": 100, "output_tokens": 1000}) == pytest.approx(
        (100 * 5 + 1000 * 40) / 1e6
    )


def test_shipped_catalog_is_complete() -> None:
    models = load_catalog()
    providers = {m.provider for m in models}
    assert providers == {"procedural", "openai", "stability", "a1111", "comfyui"}
    for model in models:
        assert model.licence, model.id
        assert model.quality_baseline > 0, model.id
        for key in model.prices:
            size = key.split("/")[0]
            assert size in model.sizes, (model.id, key)
        if model.default_quality:
            assert model.default_quality in model.qualities


def test_retired_models_are_never_planned_and_credentials_enable_providers(
    settings: Settings,
) -> None:
    models = load_catalog()
    assert configured_providers(settings) == {"procedural"}
    assert {m.provider for m in plannable(models, settings)} == {"procedural"}
    configured = settings.model_copy(
        update={"openai_api_key": "sk-x", "a1111_base_url": "http://127.0.0.1:7860"}
    )
    planned = plannable(models, configured)
    ids = [m.id for m in planned]
    assert "openai/gpt-image-1" in ids and "a1111/sdxl-base" in ids
    assert "openai/dall-e-3" not in ids  # retired
    tiers = [m.tier for m in planned]
    assert tiers == sorted(tiers, key=["draft", "standard", "premium"].index)


def test_fit_refuses_bytes_that_do_not_decode() -> None:
    from brandloop.tools.providers.errors import MalformedResponseError

    with pytest.raises(MalformedResponseError, match="does not decode"):
        fit(GeneratedImage(data=b"nope", width=10, height=10), 5, 5)
