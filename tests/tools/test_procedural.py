"""The procedural preview renderer: determinism, colours (and nothing else), accents, tiers, sizes."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from brandloop.providers import ImageProvider, ImageRequest
from brandloop.settings import Settings
from brandloop.tools.providers.colours import COLOUR_WORDS, extract_colours
from brandloop.tools.providers.errors import TerminalProviderError
from brandloop.tools.providers.factory import build_providers, close_providers
from brandloop.tools.providers.procedural import SOFTWARE, ProceduralProvider, render_preview

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
PALETTE = "navy blue, coral and cream"
PALETTE_RGB = [rgb for rgb, _ in extract_colours(PALETTE)]
ROOT = Path(__file__).resolve().parents[2]


async def render(prompt: str, seed: int | None = 7, **fields) -> np.ndarray:
    request = ImageRequest(
        model=fields.pop("model", "studio"),
        prompt=prompt,
        seed=seed,
        width=fields.pop("width", 256),
        height=fields.pop("height", 256),
        **fields,
    )
    result = await ProceduralProvider().generate(request)
    return pixels(result.images[0].data)


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode == "RGB"
        return np.asarray(image, dtype=np.float32)


def share_near(image: np.ndarray, rgb: tuple[int, int, int], radius: float = 50) -> float:
    distance = np.linalg.norm(image - np.array(rgb, dtype=np.float32), axis=-1)
    return float((distance < radius).mean())


def foreign_share(image: np.ndarray, palette: list[tuple[int, int, int]]) -> float:
    """Share of pixels far (> 90) from every named colour: an accent the prompt did not ask for."""
    distances = [np.linalg.norm(image - np.array(c, np.float32), axis=-1) for c in palette]
    return float((np.min(distances, axis=0) > 90).mean())


def laplacian_variance(image: np.ndarray) -> float:
    g = image @ LUMA
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    return float(lap.var())


# --------------------------------------------------------------------------- colour words


def test_extract_colours_keeps_order_prefers_longest_names_and_reads_hex():
    found = extract_colours("Navy blue hero, #FF7F50 glow, forest green and navy again, cream")
    assert [label for _, label in found] == ["navy blue", "#ff7f50", "forest green", "cream"]
    assert found[1][0] == (255, 127, 80)
    assert extract_colours("redo the shadows, tangent lines, #12345") == []
    assert len(COLOUR_WORDS) >= 40


def test_a_colour_word_glossing_a_hex_code_is_that_code():
    # brand palette clauses read "Navy #1e2a5a": the code is the colour, not CSS navy
    found = extract_colours("brand colours Navy #1E2A5A, Coral (#ff6f59), sky blue: #a0c4ff; red")
    assert found == [
        ((0x1E, 0x2A, 0x5A), "#1e2a5a"),
        ((0xFF, 0x6F, 0x59), "#ff6f59"),
        ((0xA0, 0xC4, 0xFF), "#a0c4ff"),
        (COLOUR_WORDS["red"], "red"),
    ]


# --------------------------------------------------------------------------- the provider


def test_is_an_image_provider():
    assert isinstance(ProceduralProvider(), ImageProvider)
    assert ProceduralProvider.name == "procedural"


async def test_same_inputs_give_byte_identical_pngs():
    request = ImageRequest(
        model="studio",
        prompt=f"{PALETTE} poster",
        seed=11,
        width=128,
        height=96,
        negative_prompt="text",
    )
    first = await ProceduralProvider().generate(request)
    second = await ProceduralProvider().generate(request.model_copy())
    assert first.images[0].data == second.images[0].data
    assert first.provider_request_id == second.provider_request_id
    assert first.provider_request_id is not None
    assert first.provider_request_id.startswith("proc-") and len(first.provider_request_id) == 21
    with Image.open(io.BytesIO(first.images[0].data)) as image:
        assert image.text == {"Software": SOFTWARE}  # type: ignore[attr-defined]


async def test_different_seeds_give_different_images():
    a = await render(f"{PALETTE} poster", seed=1)
    b = await render(f"{PALETTE} poster", seed=2)
    assert np.abs(a - b).mean() > 10


@pytest.mark.parametrize(
    ("prompt", "first"),
    [
        ("#1a7f5a backdrop with coral and cream details", (0x1A, 0x7F, 0x5A)),
        ("coral backdrop with #1a7f5a and cream details", COLOUR_WORDS["coral"]),
    ],
)
async def test_the_colour_named_first_covers_the_most_area(prompt, first):
    named = [rgb for rgb, _ in extract_colours(prompt)]
    for seed in range(4):
        image = await render(prompt, seed=seed)
        shares = {rgb: share_near(image, rgb) for rgb in named}
        assert max(shares, key=shares.__getitem__) == first, (seed, shares)
        assert shares[first] > 0.3


async def test_colours_in_the_negative_prompt_are_left_out():
    blue = COLOUR_WORDS["blue"]
    for seed in range(4):
        assert share_near(await render("red, blue and yellow stripes", seed=seed), blue) > 0.05
        without = await render("red, blue and yellow stripes", seed=seed, negative_prompt="blue")
        assert share_near(without, blue, radius=60) < 0.002


async def test_some_seeds_add_a_foreign_accent_whatever_the_wording():
    plain = [
        foreign_share(await render(f"{PALETTE} poster", seed=s, width=96, height=96), PALETTE_RGB)
        for s in range(20)
    ]
    accented = [f for f in plain if f > 0.15]
    assert 2 <= len(accented) <= 14, plain  # p ≈ 0.35 per seed
    assert all(0.15 < f < 0.45 for f in accented)
    insistent = [
        foreign_share(
            await render(f"{PALETTE} poster, strict palette, only these colours", seed=s,
                         width=96, height=96),
            PALETTE_RGB,
        )
        for s in range(20)
    ]  # fmt: skip
    assert insistent == plain  # asking nicely is no repair


async def test_draft_is_measurably_softer_than_studio():
    prompt = f"{PALETTE} poster"
    for seed in range(3):
        draft = await render(prompt, seed=seed, model="draft")
        studio = await render(prompt, seed=seed, model="studio")
        assert laplacian_variance(draft) < 0.2 * laplacian_variance(studio)
        # same seed and prompt: the draft previews the studio image's layout
        other = await render(prompt, seed=seed + 100, model="studio")
        assert np.abs(draft - studio).mean() < 0.5 * np.abs(other - studio).mean()


@pytest.mark.parametrize("model", ["draft", "studio"])
@pytest.mark.parametrize(("width", "height"), [(640, 384), (250, 130), (64, 200)])
async def test_the_requested_size_is_exact(model, width, height):
    request = ImageRequest(model=model, prompt="teal and gold", seed=3, width=width, height=height)
    result = await ProceduralProvider().generate(request)
    assert (result.images[0].width, result.images[0].height) == (width, height)
    assert pixels(result.images[0].data).shape == (height, width, 3)


def _literals(path: Path) -> set[str]:
    """Every string a module could put into a prompt: its literals and f-string pieces."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.strip():
            found.add(node.value)
    return found


EMITTERS = [ROOT / "tools" / "composer.py", ROOT / "agent" / "diagnosis.py"]
PHRASES = sorted(set().union(*(_literals(path) for path in EMITTERS)))


def test_the_emitters_have_phrases_to_check():
    assert "strict palette: only the brand colours " in " ".join(PHRASES) or any(
        "strict palette" in p for p in PHRASES
    )
    assert any("balanced exposure" in p for p in PHRASES)
    assert len(PHRASES) > 30


@pytest.mark.parametrize("model", ["draft", "studio"])
def test_no_phrase_of_the_composer_or_the_diagnosis_changes_a_pixel(model):
    """Only colours count: a phrase renders exactly as its colour words alone would."""
    base = "teal #0f766e and cream poster"
    changed = []
    for phrase in PHRASES:
        colours = " ".join(label for _, label in extract_colours(phrase))
        for seed in (3, 4):
            with_phrase = render_preview(
                prompt=f"{base}. {phrase}",
                negative_prompt="text, watermark",
                seed=seed,
                width=48,
                height=40,
                model=model,
            )
            colours_only = render_preview(
                prompt=f"{base}. {colours}", negative_prompt="text, watermark",
                seed=seed, width=48, height=40, model=model,
            )  # fmt: skip
            if with_phrase != colours_only:
                changed.append(phrase)
    assert changed == []


def test_words_other_than_colours_never_change_the_image():
    plain = render_preview(
        prompt="navy and coral", negative_prompt="", seed=9, width=64, height=64, model="studio"
    )
    for prompt in (
        "a dark moody night scene, navy and coral, busy and detailed",
        "bright airy minimal NAVY, with coral; balanced exposure, even lighting",
    ):
        assert (
            render_preview(
                prompt=prompt, negative_prompt="blurry text", seed=9, width=64, height=64,
                model="studio",
            )
            == plain
        )  # fmt: skip


@pytest.mark.parametrize("model", ["ultra", "Draft", ""])
async def test_unknown_model_is_terminal(model):
    with pytest.raises(TerminalProviderError, match="no model"):
        await ProceduralProvider().generate(ImageRequest(model=model, prompt="teal"))


async def test_impossible_size_is_terminal():
    with pytest.raises(TerminalProviderError, match="impossible"):
        await ProceduralProvider().generate(ImageRequest(model="draft", prompt="t", width=8))


async def test_count_renders_consecutive_seeds_and_charges_per_image():
    provider = ProceduralProvider(prices={"studio": 0.05})
    request = ImageRequest(
        model="studio", prompt="teal and gold", seed=40, count=2, width=96, height=96
    )
    result = await provider.generate(request)
    assert [image.seed for image in result.images] == [40, 41]
    assert result.seed == 40
    assert result.images[0].data != result.images[1].data
    single = await provider.generate(request.model_copy(update={"seed": 41, "count": 1}))
    assert single.images[0].data == result.images[1].data
    assert result.cost_usd == pytest.approx(0.10)
    assert result.usage == {"images": 2, "model": "studio"}
    assert result.finish_reason == "success"
    draft = await provider.generate(request.model_copy(update={"model": "draft", "count": 1}))
    assert draft.cost_usd == pytest.approx(0.01)


async def test_a_missing_seed_is_derived_from_the_prompt():
    request = ImageRequest(model="draft", prompt="teal and gold", width=64, height=64)
    first = await ProceduralProvider().generate(request)
    second = await ProceduralProvider().generate(request)
    assert first.seed == second.seed == first.images[0].seed
    assert first.images[0].data == second.images[0].data
    worded = await ProceduralProvider().generate(
        request.model_copy(update={"prompt": "a poster in teal and gold, please"})
    )
    assert worded.seed == first.seed  # derived from the colours, not the wording


def test_prices_for_unknown_models_are_refused():
    with pytest.raises(ValueError, match="unknown"):
        ProceduralProvider(prices={"ultra": 1.0})


async def accent_shares(provider: ProceduralProvider, seeds: range) -> list[float]:
    shares = []
    for s in seeds:
        request = ImageRequest(
            model="studio", prompt=f"{PALETTE} poster", seed=s, width=96, height=96
        )
        image = pixels((await provider.generate(request)).images[0].data)
        shares.append(foreign_share(image, PALETTE_RGB))
    return shares


async def test_the_accent_chance_is_the_share_of_seeds_with_an_accent():
    assert max(await accent_shares(ProceduralProvider(accent_chance=0.0), range(20))) < 0.15
    assert min(await accent_shares(ProceduralProvider(accent_chance=1.0), range(20))) > 0.15


@pytest.mark.parametrize("chance", [-0.01, 1.01, float("nan")])
def test_an_accent_chance_outside_zero_to_one_is_refused(chance):
    with pytest.raises(ValueError, match="accent_chance"):
        ProceduralProvider(accent_chance=chance)


async def test_the_setting_reaches_the_provider_a_deployment_builds(monkeypatch, tmp_path):
    monkeypatch.setenv("BRANDLOOP_PROCEDURAL_ACCENT_CHANCE", "1")
    providers = build_providers(Settings(data_dir=tmp_path), models=[])
    try:
        assert min(await accent_shares(providers["procedural"], range(5))) > 0.15
    finally:
        await close_providers(providers)
    monkeypatch.setenv("BRANDLOOP_PROCEDURAL_ACCENT_CHANCE", "1.5")
    with pytest.raises(ValidationError, match="procedural_accent_chance"):
        Settings(data_dir=tmp_path)
