"""Image moderation: NudeNet's shipped ONNX detector behind a one-method seam, thresholds per
label from the moderation policy.

:class:`NudeNetModerator` is the agent's default ``image_moderator``: bytes in, a
:class:`~brandloop.domain.ModerationVerdict` out. The detector it calls is any
``Callable[[Image], list[Detection]]``; the default runs ``320n.onnx`` (verified, see
``PROVENANCE.md``) with onnxruntime on CPU, ~7 ms an image at 320 px on two cores.
Provider refusals are recorded as verdicts of the same shape by :func:`provider_refusal`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from PIL import Image

from brandloop.domain import ModerationVerdict
from brandloop.once import once
from brandloop.tools.moderation.models import nudenet_model_path
from brandloop.tools.moderation.policy import NUDENET_LABELS, ImagePolicy, default_moderation_policy
from brandloop.tools.scoring.decode import ImageDecodeError, decode_image

INPUT_SIDE: Final = 320
#: The category of the verdict for bytes that cannot be decoded (or are too large to).
UNREADABLE: Final = "unreadable"


@dataclass(frozen=True)
class Detection:
    """One detected body part: NudeNet label, score and box (x, y, w, h) in image pixels."""

    label: str
    score: float
    box: tuple[int, int, int, int]


Detector = Callable[[Image.Image], list[Detection]]


class NudeNetDetector:
    """NudeNet 3.4's 320n detector on onnxruntime (CPU), with Pillow pre-processing.

    One intra-op thread by default: the moderate node checks a round's images concurrently,
    and on a busy two-core machine one thread per image is both faster and steadier.

    Letterboxing as NudeNet does it: the image is padded (bottom and right, black) to a
    square, scaled to 320², RGB, 0..1, NCHW float32. Output rows are (cx, cy, w, h, 18
    class scores) in the 320² frame; each row above ``min_score`` becomes a detection at its
    best class.
    """

    def __init__(self, *, min_score: float = 0.2, threads: int | None = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self._session: Any = ort.InferenceSession(
            str(nudenet_model_path()), options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._min_score = min_score

    def __call__(self, image: Image.Image) -> list[Detection]:
        side = max(image.size)
        scale = INPUT_SIDE / side
        source = image if image.mode == "RGB" else image.convert("RGB")
        fitted = source.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.BILINEAR,
            reducing_gap=2.0,
        )
        canvas = Image.new("RGB", (INPUT_SIDE, INPUT_SIDE))
        canvas.paste(fitted, (0, 0))
        blob = np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
        output = self._session.run(None, {self._input: blob})[0]
        return _detections(np.asarray(output)[0].T, 1.0 / scale, self._min_score)


def _detections(
    rows: npt.NDArray[np.float32], to_image: float, min_score: float
) -> list[Detection]:
    scores = rows[:, 4:]
    best = scores.argmax(axis=1)
    best_score = scores[np.arange(len(rows)), best]
    keep = np.flatnonzero(best_score >= min_score)
    found: dict[str, Detection] = {}
    for index in keep:
        label = NUDENET_LABELS[int(best[index])]
        score = float(best_score[index])
        if label in found and found[label].score >= score:
            continue
        cx, cy, w, h = (float(v) * to_image for v in rows[index, :4])
        box = (round(cx - w / 2), round(cy - h / 2), round(w), round(h))
        found[label] = Detection(label=label, score=score, box=box)
    return sorted(found.values(), key=lambda d: -d.score)


@once
def default_detector() -> NudeNetDetector:
    """One detector per process: the ONNX session takes ~0.1 s to build."""
    return NudeNetDetector(min_score=default_moderation_policy().image.min_score)


class NudeNetModerator:
    """``bytes → ModerationVerdict``: decode safely, detect, apply the policy's thresholds."""

    def __init__(self, policy: ImagePolicy | None = None, detector: Detector | None = None) -> None:
        self.policy = policy or default_moderation_policy().image
        self._detector = detector

    @property
    def detector(self) -> Detector:
        if self._detector is None:
            self._detector = default_detector()
        return self._detector

    def __call__(self, data: bytes) -> ModerationVerdict:
        try:
            image = decode_image(data, max_pixels=self.policy.max_pixels)
        except ImageDecodeError as exc:
            return ModerationVerdict(
                allowed=False, source="image", categories=[UNREADABLE], reasons=[str(exc)]
            )
        return self.moderate(image)

    def moderate(self, image: Image.Image) -> ModerationVerdict:
        """The verdict for a decoded image; ``scores`` holds every label's best score."""
        detections = self.detector(image)
        scores = {d.label: round(d.score, 4) for d in detections}
        reasons = [
            f"sexual: {d.label.lower().replace('_', ' ')} detected ({d.score:.2f} ≥ "
            f"{self.policy.block[d.label]:.2f})"
            for d in detections
            if d.label in self.policy.block and d.score >= self.policy.block[d.label]
        ]
        if not reasons:
            return ModerationVerdict(
                allowed=True,
                source="image",
                reasons=["no blocked content detected (NudeNet 320n)"],
                scores=scores,
            )
        return ModerationVerdict(
            allowed=False, source="image", categories=["sexual"], reasons=reasons, scores=scores
        )


def provider_refusal(provider: str, code: str, message: str = "") -> ModerationVerdict:
    """A provider's content refusal (OpenAI ``moderation_blocked``, Stability
    ``CONTENT_FILTERED``) as a verdict of the same shape as ours."""
    reason = f"{provider} refused the request ({code})" + (f": {message}" if message else "")
    return ModerationVerdict(
        allowed=False, source="provider", categories=[code], reasons=[reason[:300]]
    )
