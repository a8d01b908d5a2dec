"""The quality signals on the labelled fixture set: each classifies and orders as labelled,
broken or hostile files are refused cleanly, and set-level signals (near-duplicates,
similarity to accepted assets) behave."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brandloop.errors import BadInputError
from brandloop.policies.scoring import (
    SIGNAL_NAMES,
    AlignmentPolicy,
    ScoringPolicy,
    SignalPolicy,
    load_scoring_policy,
)
from brandloop.tools.scoring import (
    ImageAnalysis,
    ImageDecodeError,
    analyse_image,
    decode_descriptor,
    descriptor,
    encode_descriptor,
    hamming,
    load_alignment_scorer,
    score_set,
)
from brandloop.tools.scoring.quality import colourfulness_metric, contrast, format_match
from tests.tools.signal_fixtures import FixtureSet

MAIN = ("palette", "sharpness", "exposure", "contrast", "colourfulness", "format")


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> FixtureSet:
    return FixtureSet(tmp_path_factory.mktemp("signals"))


@pytest.fixture(scope="module")
def policy() -> ScoringPolicy:
    return load_scoring_policy()


@pytest.fixture(scope="module")
def analysed(fx: FixtureSet, policy: ScoringPolicy) -> dict[str, ImageAnalysis]:
    found = {}
    for name, label in fx.images.items():
        if "bad" in label:
            continue
        found[name] = analyse_image(
            fx.bytes(name), brand=fx.brand, width=fx.width, height=fx.height, policy=policy
        )
    return found


def _labelled(kind: str) -> list[tuple[str, str, bool]]:
    from tests.tools.signal_fixtures import make_fixtures_module

    images = make_fixtures_module()._images()
    return [
        (name, signal, passed)
        for name, (_, label) in images.items()
        for signal, passed in label.get("expect", {}).items()
    ]


@pytest.mark.parametrize(("name", "signal", "passed"), _labelled("expect"))
def test_each_labelled_image_classifies_as_labelled(analysed, name, signal, passed):
    sig = analysed[name].scores.signals[signal]
    assert sig.passed is passed, f"{name}: {signal} = {sig.value:.3f} ({sig.explanation})"
    assert 0.0 <= sig.value <= 1.0 and sig.explanation


def test_the_clean_on_palette_image_passes_every_signal(analysed, policy):
    scores = analysed["on_palette.png"].scores
    assert set(scores.signals) == set(MAIN)
    assert scores.failed == [] and policy.accepts(scores)


def test_every_signal_is_named_where_eval_suites_look_names_up(analysed):
    """``SIGNAL_NAMES`` is what an eval's ``min_score`` may name: every signal the policy
    weighs, and every signal an analysis produces."""
    weighed = {
        name
        for name, field in ScoringPolicy.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, SignalPolicy)
    }
    assert weighed == set(SIGNAL_NAMES)
    produced = {name for a in analysed.values() for name in a.scores.signals}
    assert produced <= set(SIGNAL_NAMES)


def test_signals_order_the_labelled_pairs(fx, analysed):
    for signal, better, worse in fx.manifest["order"]:
        high = analysed[better].scores.signals[signal].value
        low = analysed[worse].scores.signals[signal].value
        assert high > low, f"{signal}: {better} {high:.3f} should beat {worse} {low:.3f}"


def test_explanations_name_the_reason(analysed):
    assert "forbidden colour #ff00ff" in (
        analysed["forbidden_colour.png"].scores.signals["palette"].explanation
    )
    assert "too dark" in analysed["underexposed.png"].scores.signals["exposure"].explanation
    assert "too bright" in analysed["overexposed.png"].scores.signals["exposure"].explanation
    assert "low contrast" in analysed["flat.png"].scores.signals["contrast"].explanation
    assert "not colourful" in analysed["greyscale.png"].scores.signals["colourfulness"].explanation
    assert "aspect" in analysed["wrong_aspect.png"].scores.signals["format"].explanation


@pytest.mark.parametrize("name", ["cmyk.jpg", "grey_l.png", "alpha.png", "sixteen_bit.png"])
def test_other_modes_are_scored_like_their_rgb_source(analysed, name):
    scores = analysed[name].scores
    reference = analysed["on_palette.png"].scores.signals
    assert set(scores.signals) == set(MAIN)
    # the same picture in another mode: sharpness and contrast survive the conversion
    assert scores.signals["sharpness"].passed and scores.signals["contrast"].passed
    assert abs(scores.signals["exposure"].raw - reference["exposure"].raw) < 40


def test_cmyk_keeps_its_colours(analysed):
    assert analysed["cmyk.jpg"].scores.signals["palette"].passed
    assert analysed["sixteen_bit.png"].scores.signals["colourfulness"].value == 0.0


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("truncated.png", "truncated"),
        ("not_an_image.png", "could not decode"),
        ("empty.png", "empty"),
        ("bomb.png", "too large"),
        ("bomb_64mp.png", "64,000,000 pixels"),
    ],
)
def test_broken_and_hostile_files_are_refused_cleanly(fx, policy, name, message):
    started = time.perf_counter()
    with pytest.raises(ImageDecodeError, match=message) as info:
        analyse_image(fx.bytes(name), brand=fx.brand, width=256, height=256, policy=policy)
    assert time.perf_counter() - started < 2.0, "refused before decoding, not after"
    assert "\n" not in str(info.value) and "_io." not in str(info.value)


def test_the_pixel_limit_comes_from_the_policy(fx, policy):
    tight = policy.model_copy(update={"max_pixels": 256 * 255})
    with pytest.raises(ImageDecodeError, match="65,536 pixels"):
        analyse_image(
            fx.bytes("on_palette.png"), brand=fx.brand, width=256, height=256, policy=tight
        )


# --------------------------------------------------------------------------- sets


def test_a_near_duplicate_fails_and_the_original_passes(analysed, policy):
    names = ["on_palette.png", "near_duplicate.jpg", "distinct.png", "distinct_2.png"]
    scored = score_set([analysed[n] for n in names], policy, labels=names)
    passed = {n: s.signals["duplicate"].passed for n, s in zip(names, scored, strict=True)}
    assert passed == {
        "on_palette.png": True,
        "near_duplicate.jpg": False,
        "distinct.png": True,
        "distinct_2.png": True,
    }
    assert "on_palette.png" in scored[1].signals["duplicate"].explanation
    assert scored[1].composite < analysed["near_duplicate.jpg"].scores.composite + 1e-9
    assert "duplicate" in scored[1].failed


def test_duplicates_of_images_accepted_earlier_fail_too(analysed, policy):
    earlier = [analysed["on_palette.png"].phash]
    (scores,) = score_set([analysed["near_duplicate.jpg"]], policy, earlier=earlier)
    assert not scores.signals["duplicate"].passed
    (fresh,) = score_set([analysed["distinct.png"]], policy, earlier=earlier)
    assert fresh.signals["duplicate"].passed


def test_perceptual_hash_is_stable_under_recompression_and_far_for_new_layouts(analysed):
    base = analysed["on_palette.png"].phash
    assert hamming(base, analysed["near_duplicate.jpg"].phash) <= 4
    assert hamming(base, analysed["distinct.png"].phash) >= 16
    assert hamming(base, analysed["distinct_2.png"].phash) >= 16


def test_similarity_to_accepted_assets(fx, policy, analysed):
    references = [decode_descriptor(encode_descriptor(analysed["on_palette.png"].descriptor))]

    def similarity(name: str) -> float:
        result = analyse_image(
            fx.bytes(name),
            brand=fx.brand,
            width=fx.width,
            height=fx.height,
            policy=policy,
            references=references,
        )
        return result.scores.signals["similarity"].value

    assert (
        similarity("near_duplicate.jpg")
        > similarity("distinct.png")
        > similarity("off_palette.png")
    )
    assert similarity("distinct.png") >= policy.similarity.threshold
    assert similarity("off_palette.png") < policy.similarity.threshold
    assert "similarity" not in analysed["on_palette.png"].scores.signals  # no references


def test_descriptor_round_trips_compactly():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    vector = descriptor(image)
    text = encode_descriptor(vector)
    assert len(text) < 200
    assert np.allclose(decode_descriptor(text), vector, atol=1 / 127)
    with pytest.raises(ValueError):
        decode_descriptor("AAAA")


# --------------------------------------------------------------------------- single signals


def test_format_match(policy):
    pol = policy.format
    assert format_match(1024, 1024, wanted_width=1024, wanted_height=1024, policy=pol).value == 1.0
    assert not format_match(1200, 628, wanted_width=1024, wanted_height=1024, policy=pol).passed
    half = format_match(512, 512, wanted_width=1024, wanted_height=1024, policy=pol)
    assert half.value == pytest.approx(0.5) and not half.passed
    assert format_match(1216, 640, wanted_width=1200, wanted_height=628, policy=pol).passed


def test_colourfulness_metric_follows_hasler_susstrunk():
    grey = np.full((8, 8, 3), 128, dtype=np.uint8)
    assert colourfulness_metric(grey) == 0.0
    red = np.zeros((8, 8, 3), dtype=np.uint8)
    red[..., 0] = 255
    # rg = 255, yb = 127.5 everywhere: sigma 0, mu = hypot(255, 127.5); M = 0.3 mu
    assert colourfulness_metric(red) == pytest.approx(0.3 * np.hypot(255, 127.5), rel=1e-4)


def test_contrast_reads_the_percentile_spread(policy):
    ramp = np.tile(np.arange(256, dtype=np.uint8), (10, 1))
    signal = contrast(ramp, policy.contrast)
    assert signal.raw == pytest.approx(246, abs=2) and signal.value == 1.0
    flat = np.full((10, 10), 90, dtype=np.uint8)
    assert contrast(flat, policy.contrast).value == 0.0


# --------------------------------------------------------------------------- alignment


class KeywordAligner:
    """A stand-in text-image model: 0.9 when the prompt says how light the image is."""

    def score(self, image: Image.Image, prompt: str) -> float:
        light = float(np.asarray(image.convert("L"), dtype=np.float64).mean()) > 128
        return 0.9 if ("light" if light else "dark") in prompt else 0.05


def test_alignment_is_off_by_default_and_pluggable(fx, policy):
    assert load_alignment_scorer(policy.alignment) is None
    data = fx.bytes("on_palette.png")
    kwargs = {"brand": fx.brand, "width": 256, "height": 256, "policy": policy}
    assert "alignment" not in analyse_image(data, **kwargs).scores.signals
    good = analyse_image(data, prompt="a light poster", aligner=KeywordAligner(), **kwargs)
    bad = analyse_image(data, prompt="a dark poster", aligner=KeywordAligner(), **kwargs)
    assert good.scores.signals["alignment"].passed and not bad.scores.signals["alignment"].passed


def test_alignment_never_downloads_weights(tmp_path: Path):
    with pytest.raises(BadInputError, match="weights_path"):
        load_alignment_scorer(AlignmentPolicy(enabled=True))
    with pytest.raises(BadInputError):  # open-clip is not installed here, or the file is missing
        load_alignment_scorer(AlignmentPolicy(enabled=True, weights_path=tmp_path / "absent.pt"))


def test_decoding_is_shared_between_moderation_and_scoring(fx, policy):
    from brandloop.tools.scoring.decode import clear_decode_cache, decode_image

    clear_decode_cache()
    data = fx.bytes("distinct.png")
    first = decode_image(data, max_pixels=policy.max_pixels)
    assert decode_image(data, max_pixels=policy.max_pixels, width=256, height=256) is first
    assert decode_image(data, max_pixels=policy.max_pixels + 1) is not first  # other limit
    raw = bytes(256 * 256 * 3)
    from_raw = decode_image(raw, max_pixels=policy.max_pixels, width=256, height=256)
    assert from_raw.size == (256, 256)
    with pytest.raises(ImageDecodeError):  # a raw buffer is never served for another size
        decode_image(raw, max_pixels=policy.max_pixels, width=128, height=128)


def test_an_image_with_an_exif_orientation_is_decoded_upright() -> None:
    """A phone's portrait JPEG: landscape pixels and Orientation 6 (rotate 90°). It was scored,
    and moderated, as 400x200 lying on its side (outside tester)."""
    import io

    from brandloop.tools.scoring.decode import decode_image

    image = Image.new("RGB", (400, 200), (15, 118, 110))
    exif = image.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    assert decode_image(buffer.getvalue(), max_pixels=40_000_000).size == (200, 400)


def test_a_header_past_pillows_own_limit_is_refused_with_brandloops_limit() -> None:
    """A 68-byte PNG claiming 60000x60000: Pillow's bomb check fires first, and its message
    named Pillow's limit (178,956,970 pixels), not the policy's (outside tester)."""
    import struct
    import zlib

    from brandloop.tools.scoring.decode import decode_image

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(bomb, max_pixels=40_000_000)
    assert str(caught.value) == (
        "image is too large: it has 3,600,000,000 pixels; refusing to decode more than "
        "40,000,000 pixels or "
        "16384 a side"
    )
