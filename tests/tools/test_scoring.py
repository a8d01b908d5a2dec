"""Colour science, pixel signals and the scoring policy, on synthetic images built here."""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from brandloop.domain import BrandKit
from brandloop.errors import BadInputError
from brandloop.policies.scoring import ScoringPolicy, load_scoring_policy
from brandloop.tools.providers.errors import MalformedResponseError
from brandloop.tools.scoring import (
    delta_e_2000,
    dominant_colours,
    exposure,
    palette_adherence,
    score_image,
    sharpness,
    srgb_to_lab,
)
from brandloop.tools.scoring.colour import lab_to_hex

TEAL, ORANGE, CREAM = (15, 118, 110), (249, 115, 22), (240, 235, 220)
BLUE, PURPLE, GREEN = (59, 130, 246), (168, 85, 247), (34, 197, 94)
MAGENTA = (255, 0, 255)

BRAND = BrandKit(
    name="Acme",
    palette=[
        {"hex": "#0f766e", "name": "teal"},
        {"hex": "#f97316", "name": "orange", "role": "accent"},
        {"hex": "#f0ebdc", "name": "cream", "role": "background"},
    ],
    forbidden_colours=["#ff00ff"],
)


@pytest.fixture(scope="module")
def policy() -> ScoringPolicy:
    return load_scoring_policy()


def scene(
    side: int = 1024,
    *,
    background: tuple[int, int, int] = CREAM,
    fills: tuple[tuple[int, int, int], ...] = (TEAL, ORANGE),
    noise: float = 6.0,
    seed: int = 0,
) -> Image.Image:
    """Crisp flat shapes with a fine grain texture, like a clean brand illustration."""
    image = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(image)
    s = side / 1024
    draw.rectangle((100 * s, 120 * s, 500 * s, 600 * s), fill=fills[0])
    draw.ellipse((550 * s, 200 * s, 900 * s, 550 * s), fill=fills[1])
    draw.polygon([(200 * s, 900 * s), (500 * s, 650 * s), (800 * s, 950 * s)], fill=fills[0])
    pixels = np.asarray(image, dtype=np.float32)
    grain = np.random.default_rng(seed).normal(0.0, noise, pixels.shape[:2])[..., None]
    return Image.fromarray(np.clip(pixels + grain, 0, 255).astype(np.uint8))


def rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def gray(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.uint8)


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


# --------------------------------------------------------------------------- colour science

# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes,
# supplementary test data, and mathematical observations", Table 1 (pair numbers as there).
SHARMA_PAIRS = [
    (1, (50.0000, 2.6772, -79.7751), (50.0000, 0.0000, -82.7485), 2.0425),
    (4, (50.0000, -1.3802, -84.2814), (50.0000, 0.0000, -82.7485), 1.0000),
    (7, (50.0000, 0.0000, 0.0000), (50.0000, -1.0000, 2.0000), 2.3669),
    (9, (50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0009), 7.1792),
    (11, (50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0011), 7.2195),
    (13, (50.0000, -0.0010, 2.4900), (50.0000, 0.0009, -2.4900), 4.8045),
    (15, (50.0000, -0.0010, 2.4900), (50.0000, 0.0011, -2.4900), 4.7461),
    (17, (50.0000, 2.5000, 0.0000), (73.0000, 25.0000, -18.0000), 27.1492),
    (19, (50.0000, 2.5000, 0.0000), (56.0000, -27.0000, -3.0000), 31.9030),
    (25, (60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    (29, (22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    (31, (90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441),
    (33, (6.7747, -0.2908, -2.4247), (5.8714, -0.0985, -2.2286), 0.6377),
    (34, (2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


@pytest.mark.parametrize(("pair", "lab1", "lab2", "expected"), SHARMA_PAIRS)
def test_delta_e_2000_matches_sharma_test_data(pair, lab1, lab2, expected):
    assert float(delta_e_2000(lab1, lab2)) == pytest.approx(expected, abs=1e-4), f"pair {pair}"
    assert float(delta_e_2000(lab2, lab1)) == pytest.approx(expected, abs=1e-4), "symmetric"


def test_delta_e_2000_is_vectorised_and_zero_on_identity():
    first = np.array([p[1] for p in SHARMA_PAIRS])
    second = np.array([p[2] for p in SHARMA_PAIRS])
    distances = delta_e_2000(first, second)
    assert distances.shape == (len(SHARMA_PAIRS),)
    np.testing.assert_allclose(distances, [p[3] for p in SHARMA_PAIRS], atol=1e-4)
    # broadcasting: every row against every row, identity on the diagonal
    matrix = delta_e_2000(first[:, None, :], first[None, :, :])
    assert matrix.shape == (len(first), len(first))
    np.testing.assert_allclose(np.diag(matrix), 0.0, atol=1e-12)


@pytest.mark.parametrize(
    ("srgb", "lab"),
    [
        ((255, 255, 255), (100.0, 0.0, 0.0)),
        ((0, 0, 0), (0.0, 0.0, 0.0)),
        ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
        ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
        ((128, 128, 128), (53.5850, 0.0, 0.0)),
    ],
)
def test_srgb_to_lab_reference_values(srgb, lab):
    as_uint8 = srgb_to_lab(np.array(srgb, dtype=np.uint8))
    as_float = srgb_to_lab(np.array(srgb, dtype=np.float64))
    np.testing.assert_allclose(as_uint8, lab, atol=2e-3)
    np.testing.assert_allclose(as_float, as_uint8, atol=1e-9)


def test_lab_to_hex_round_trips():
    for colour in ("#0f766e", "#f97316", "#000000", "#ffffff", "#123456"):
        value = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)
        assert lab_to_hex(srgb_to_lab(value)) == colour


def test_dominant_colours_finds_a_70_30_split():
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    image[:, :70] = TEAL
    image[:, 70:] = ORANGE
    found = dominant_colours(image, k=5)
    assert [round(coverage, 2) for _, coverage in found[:2]] == pytest.approx([0.7, 0.3], abs=0.02)
    assert sum(coverage for _, coverage in found) == pytest.approx(1.0)
    expected = srgb_to_lab(np.array([TEAL, ORANGE], dtype=np.uint8))
    for (lab, _), want in zip(found[:2], expected, strict=True):
        assert float(delta_e_2000(lab, want)) < 2.0
    # deterministic: same answer on a second run
    again = dominant_colours(image, k=5)
    assert all(
        np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(found, again, strict=True)
    )


def test_dominant_colours_of_a_flat_image_is_one_colour():
    image = np.full((32, 48, 3), TEAL, dtype=np.uint8)
    found = dominant_colours(image, k=5)
    assert len(found) == 1
    assert found[0][1] == 1.0


# --------------------------------------------------------------------------- signals


def test_palette_adherence_orders_on_palette_above_off_palette(policy):
    on = palette_adherence(rgb(scene()), BRAND, policy.palette)
    off = palette_adherence(
        rgb(scene(background=BLUE, fills=(PURPLE, GREEN))), BRAND, policy.palette
    )
    assert on.value > off.value
    assert on.passed and not off.passed
    assert on.raw < 5.0 < 15.0 < off.raw
    assert "ΔE from the brand palette" in on.explanation
    assert "of pixels within 10 ΔE" in on.explanation
    assert "most off-palette" in off.explanation


def test_palette_adherence_fails_on_a_forbidden_colour(policy):
    on = palette_adherence(rgb(scene()), BRAND, policy.palette)
    tainted = palette_adherence(
        rgb(scene(fills=(TEAL, MAGENTA))), BRAND, policy.palette
    )  # the ellipse, ~9% of the frame
    assert not tainted.passed
    assert "forbidden colour #ff00ff" in tainted.explanation
    assert tainted.value < on.value


def test_sharpness_orders_sharp_above_blurred(policy):
    crisp = scene()
    sharp = sharpness(gray(crisp), policy.sharpness)
    blurred = sharpness(gray(crisp.filter(ImageFilter.GaussianBlur(3))), policy.sharpness)
    upscaled = sharpness(
        gray(scene(256).resize((1024, 1024), Image.Resampling.BILINEAR)), policy.sharpness
    )
    assert sharp.passed, sharp.explanation
    assert not blurred.passed, blurred.explanation
    assert not upscaled.passed, upscaled.explanation
    assert sharp.value > upscaled.value > blurred.value
    assert "blurred" in blurred.explanation


def test_small_images_are_measured_at_their_own_size(policy):
    # A crisp 256² render is as sharp as a 256² request allows; a 64² render blown up 4× is not.
    assert sharpness(gray(scene(256)), policy.sharpness).passed
    upscaled = scene(64).resize((256, 256), Image.Resampling.BILINEAR)
    assert not sharpness(gray(upscaled), policy.sharpness).passed


def test_sharpness_is_not_fooled_by_low_contrast(policy):
    # A crisp image in a dark, compressed tonal range is an exposure problem, not blur.
    crisp = scene()
    dim = Image.eval(crisp, lambda v: int(v * 0.3))
    assert sharpness(gray(dim), policy.sharpness).passed
    blurred_dim = Image.eval(crisp.filter(ImageFilter.GaussianBlur(3)), lambda v: int(v * 0.3))
    assert not sharpness(gray(blurred_dim), policy.sharpness).passed
    unscaled = policy.sharpness.model_copy(update={"contrast_reference": 0.0})
    assert not sharpness(gray(dim), unscaled).passed


def test_sharpness_is_normalised_for_resolution(policy):
    # The same picture delivered at twice the pixel count carries the same detail.
    image = scene(1024)
    doubled = image.resize((2048, 2048), Image.Resampling.NEAREST)
    base = sharpness(gray(image), policy.sharpness)
    large = sharpness(gray(doubled), policy.sharpness)
    assert base.passed and large.passed
    assert large.raw == pytest.approx(base.raw, rel=0.05)


def test_exposure_orders_mid_above_dark_and_white(policy):
    mid = exposure(gray(scene(256, background=(128, 128, 128))), policy.exposure)
    dark = exposure(gray(scene(256, background=(0, 0, 0), noise=0.0)), policy.exposure)
    white = exposure(gray(scene(256, background=(255, 255, 255), noise=0.0)), policy.exposure)
    underexposed = exposure(np.full((64, 64), 20, dtype=np.uint8), policy.exposure)
    assert mid.passed
    assert not dark.passed and not white.passed and not underexposed.passed
    assert mid.value > dark.value and mid.value > white.value
    assert "too dark" in dark.explanation
    assert "too bright" in white.explanation
    assert mid.raw == pytest.approx(128, abs=25)


# --------------------------------------------------------------------------- score_image


def test_score_image_composite_is_the_weighted_mean(policy):
    scores = score_image(encode(scene()), brand=BRAND, width=1024, height=1024, policy=policy)
    assert set(scores.signals) == PER_IMAGE
    weights = policy.weights()
    # absent signals (duplicate: a set property; similarity: no memory) do not dilute it
    present = sum(weights[n] for n in scores.signals)
    expected = sum(weights[n] * s.value for n, s in scores.signals.items()) / present
    assert scores.composite == pytest.approx(expected)
    assert scores.failed == []
    assert policy.accepts(scores)


PER_IMAGE = {"palette", "sharpness", "exposure", "contrast", "colourfulness", "format"}
MODES = ["L", "LA", "RGBA", "P", "P+transparency", "CMYK", "I;16", "I", "F", "1", "JPEG"]


@functools.cache
def _modes() -> dict[str, bytes]:
    base = scene(128)
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.new("L", base.size, 128))
    sixteen = Image.fromarray(np.full((64, 64), 32768, dtype=np.uint16))
    transparent_p = base.convert("P", palette=Image.Palette.ADAPTIVE)
    transparent_p.info["transparency"] = 0
    return {
        "L": encode(base.convert("L")),
        "LA": encode(base.convert("LA")),
        "RGBA": encode(rgba),
        "P": encode(base.convert("P", palette=Image.Palette.ADAPTIVE)),
        "P+transparency": encode(transparent_p),
        "CMYK": encode(base.convert("CMYK"), "JPEG"),
        "I;16": encode(sixteen),
        "I": encode(Image.fromarray(np.full((64, 64), 40000, dtype=np.int32)), "TIFF"),
        "F": encode(Image.fromarray(np.full((64, 64), 100.0, dtype=np.float32)), "TIFF"),
        "1": encode(base.convert("1")),
        "JPEG": encode(base, "JPEG"),
    }


def test_mode_fixtures_are_what_they_say():
    for name, data in _modes().items():
        opened = Image.open(io.BytesIO(data))
        assert opened.mode == name.split("+")[0] or name == "JPEG", (name, opened.mode)


@pytest.mark.parametrize("mode", MODES)
def test_score_image_decodes_every_mode(mode, policy):
    data = _modes()[mode]
    scores = score_image(data, brand=BRAND, width=128, height=128, policy=policy)
    assert set(scores.signals) == PER_IMAGE
    assert 0.0 <= scores.composite <= 1.0


def test_sixteen_bit_images_are_scaled_not_clipped(policy):
    data = _modes()["I;16"]  # 32768 of 65535: mid-grey, not white
    scores = score_image(data, brand=BRAND, width=64, height=64, policy=policy)
    assert scores.signals["exposure"].raw == pytest.approx(127.5, abs=1.0)


def test_score_image_accepts_raw_pixels_of_the_stated_size(policy):
    image = scene(64)
    raw = np.asarray(image).tobytes()
    from_raw = score_image(raw, brand=BRAND, width=64, height=64, policy=policy)
    from_png = score_image(encode(image), brand=BRAND, width=64, height=64, policy=policy)
    assert from_raw.composite == pytest.approx(from_png.composite)


def test_score_image_refuses_bytes_it_cannot_read(policy):
    with pytest.raises(MalformedResponseError, match="could not decode"):
        score_image(b"not an image", brand=BRAND, width=64, height=64, policy=policy)


# --------------------------------------------------------------------------- policy


def test_default_policy_loads_with_sane_values():
    policy = load_scoring_policy()
    assert 0 < policy.palette.threshold < 1
    assert sum(policy.weights().values()) > 0


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ("palette:\n  weight: -1\n  threshold: 0.5\n", "greater than or equal to 0"),
        ("palette:\n  weight: 1\n  threshold: 1.5\n", "less than or equal to 1"),
        ("palette:\n  weight: 0\n  threshold: 0.5\n", None),
    ],
)
def test_policy_validation(tmp_path: Path, patch, message):
    rest = (
        "sharpness:\n  weight: {w}\n  threshold: 0.5\n"
        "exposure:\n  weight: {w}\n  threshold: 0.5\n"
        "composite_threshold: 0.5\n"
    )
    weight = 0 if message is None else 1
    path = tmp_path / "policy.yaml"
    path.write_text(patch + rest.format(w=weight), encoding="utf-8")
    with pytest.raises(BadInputError, match=message or "positive weight"):
        load_scoring_policy(path)


def test_policy_loads_from_a_custom_file(tmp_path: Path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "palette: {weight: 2, threshold: 0.8}\n"
        "sharpness: {weight: 1, threshold: 0.4}\n"
        "exposure: {weight: 0, threshold: 0.3}\n"
        "composite_threshold: 0.7\n",
        encoding="utf-8",
    )
    policy = load_scoring_policy(path)
    weights = policy.weights()
    assert {k: weights[k] for k in ("palette", "sharpness", "exposure")} == {
        "palette": 2,
        "sharpness": 1,
        "exposure": 0,
    }
    # signals the file does not name count nothing: an older policy scores as it did
    assert all(v == 0 for k, v in weights.items() if k not in {"palette", "sharpness"})
    assert policy.palette.delta_e_scale == 40.0  # defaults fill what the file leaves out


def test_missing_policy_file_is_a_bad_input(tmp_path: Path):
    with pytest.raises(BadInputError, match="cannot read"):
        load_scoring_policy(tmp_path / "absent.yaml")
