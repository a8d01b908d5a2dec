"""Image moderation: NudeNet's shipped detector makes no false block on the benign fixtures;
per-label policy thresholds decide (tested through the detector seam); hostile files are
refused without decoding; the shipped model is checksum-verified."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from brandloop.errors import BadInputError
from brandloop.tools.moderation.image import Detection, NudeNetModerator, provider_refusal
from brandloop.tools.moderation.models import ModelIntegrityError, nudenet_model_path, verified
from brandloop.tools.moderation.policy import ImagePolicy, load_moderation_policy
from tests.tools.signal_fixtures import FixtureSet


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> FixtureSet:
    return FixtureSet(tmp_path_factory.mktemp("moderation"))


def test_no_false_blocks_on_the_benign_fixtures(fx):
    moderator = NudeNetModerator()
    readable = [name for name, label in fx.images.items() if "bad" not in label]
    blocked = [name for name in readable if not moderator(fx.bytes(name)).allowed]
    assert blocked == []
    verdict = moderator(fx.bytes("skin_tones.png"))
    assert verdict.source == "image" and verdict.reasons


class Scripted:
    """A detector that reports what it is told: the seam's outside world."""

    def __init__(self, *detections: Detection) -> None:
        self.detections = list(detections)
        self.seen: list[tuple[int, int]] = []

    def __call__(self, image: Image.Image) -> list[Detection]:
        self.seen.append(image.size)
        return self.detections


def _det(label: str, score: float) -> Detection:
    return Detection(label=label, score=score, box=(0, 0, 10, 10))


POLICY = load_moderation_policy().image


@pytest.mark.parametrize(
    ("detections", "allowed"),
    [
        ([], True),
        ([_det("FEMALE_BREAST_EXPOSED", 0.8)], False),
        ([_det("FEMALE_BREAST_EXPOSED", 0.3)], True),  # below its threshold
        ([_det("MALE_GENITALIA_EXPOSED", 0.45)], False),
        ([_det("FACE_FEMALE", 0.99), _det("BELLY_EXPOSED", 0.9)], True),  # never blocks
        ([_det("BUTTOCKS_COVERED", 0.9), _det("BUTTOCKS_EXPOSED", 0.6)], False),
    ],
)
def test_policy_thresholds_decide(fx, detections, allowed):
    verdict = NudeNetModerator(POLICY, detector=Scripted(*detections))(fx.bytes("on_palette.png"))
    assert verdict.allowed is allowed
    assert verdict.categories == ([] if allowed else ["sexual"])
    for d in detections:
        assert verdict.scores[d.label] == pytest.approx(d.score)


def test_precision_and_recall_of_the_policy_layer(fx):
    cases = [
        ([_det("FEMALE_GENITALIA_EXPOSED", s)], s >= 0.4) for s in (0.1, 0.3, 0.41, 0.7, 0.95)
    ] + [([_det("FEET_EXPOSED", 0.99)], False)]
    predicted = [
        (not NudeNetModerator(POLICY, Scripted(*d))(fx.bytes("distinct.png")).allowed, e)
        for d, e in cases
    ]
    tp = sum(p and e for p, e in predicted)
    assert tp == sum(e for _, e in predicted) == sum(p for p, _ in predicted)


def test_a_brand_policy_can_relax_a_label(fx):
    swimwear = ImagePolicy(block={"FEMALE_GENITALIA_EXPOSED": 0.4})
    detector = Scripted(_det("BUTTOCKS_EXPOSED", 0.9))
    assert NudeNetModerator(swimwear, detector)(fx.bytes("on_palette.png")).allowed


@pytest.mark.parametrize(
    "name", ["truncated.png", "not_an_image.png", "empty.png", "bomb.png", "bomb_64mp.png"]
)
def test_unreadable_images_are_not_allowed_and_never_reach_the_detector(fx, name):
    detector = Scripted()
    verdict = NudeNetModerator(POLICY, detector)(fx.bytes(name))
    assert not verdict.allowed and verdict.categories == ["unreadable"]
    assert detector.seen == []


def test_odd_modes_reach_the_detector_as_rgb(fx):
    detector = Scripted()
    for name in ("cmyk.jpg", "grey_l.png", "alpha.png", "sixteen_bit.png"):
        assert NudeNetModerator(POLICY, detector)(fx.bytes(name)).allowed
    assert detector.seen == [(256, 256)] * 4


def test_provider_refusals_have_the_same_shape():
    verdict = provider_refusal("openai/gpt-image-1", "moderation_blocked", "safety system")
    assert not verdict.allowed and verdict.source == "provider"
    assert verdict.categories == ["moderation_blocked"] and "openai" in verdict.reasons[0]


def test_the_shipped_model_is_verified(tmp_path: Path):
    assert nudenet_model_path().name == "320n.onnx"
    fake = tmp_path / "320n.onnx"
    fake.write_bytes(b"not the model")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        verified(fake, "0" * 64)


def test_policy_refuses_unknown_labels(tmp_path: Path):
    path = tmp_path / "moderation.yaml"
    path.write_text("image:\n  block:\n    NAKED: 0.5\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="unknown NudeNet labels"):
        load_moderation_policy(path)


#: the prompt the agent writes for Acme Coffee's "a steaming cup of coffee" (brand-hero@1)
ACME_PROMPT = (
    "a steaming cup of coffee. warm, cozy, artisanal mood for Acme Coffee, featuring coffee "
    "cup. in the brand colours teal #0f766e, cream #fef3c7, espresso #4a2c2a."
)


def test_a_tiny_procedural_draft_can_be_blocked_as_docs_evals_says() -> None:
    """docs/evals.md said a procedural image is never blocked; an outside tester's 64x64
    ``procedural/draft`` at seed 2 was. A draft paints a quarter of the size and scales it up,
    and the detector scales that again to 320 px: soft blobs it misreads. The same colours and
    seed at 128 px, or by the studio model at 64 px, are not blocked."""
    from brandloop.tools.providers.procedural import render_preview

    def verdict(model: str, side: int) -> tuple[bool, list[str]]:
        png = render_preview(
            prompt=ACME_PROMPT, negative_prompt="text, watermark, logo, clutter", seed=2,
            width=side, height=side, model=model,
        )  # fmt: skip
        found = NudeNetModerator()(png)
        return found.allowed, found.reasons

    allowed, reasons = verdict("draft", 64)
    assert not allowed and reasons == ["sexual: female breast exposed detected (0.51 ≥ 0.50)"]
    assert verdict("draft", 128)[0] and verdict("studio", 64)[0]
