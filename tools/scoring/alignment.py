"""Optional text-image alignment: how well an image matches its prompt, behind one seam.

Off by default. brandloop never downloads weights: :func:`load_alignment_scorer` builds an
open-clip scorer only from a weights file the user names in the scoring policy, and refuses
(with a clear error) when open-clip is not installed or the file is missing. Any object with
``score(image, prompt) -> float`` in [0, 1] can be injected instead, e.g. in tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from brandloop.domain import Signal
from brandloop.errors import BadInputError
from brandloop.policies.scoring import AlignmentPolicy


@runtime_checkable
class AlignmentScorer(Protocol):
    """Text-image agreement in [0, 1] (1: the image shows what the prompt says)."""

    def score(self, image: Image.Image, prompt: str) -> float: ...


def alignment_signal(
    scorer: AlignmentScorer, image: Image.Image, prompt: str, policy: AlignmentPolicy
) -> Signal:
    value = min(max(float(scorer.score(image, prompt)), 0.0), 1.0)
    return Signal.judged(
        "alignment",
        value,
        raw=value,
        threshold=policy.threshold,
        explain=lambda passed: (
            f"text-image alignment {value:.2f} with the prompt"
            + ("" if passed else ": the image may not show what was asked")
        ),
    )


class OpenClipScorer:
    """open-clip cosine similarity, rescaled so 0.15 → 0 and 0.35 → 1 (typical CLIP range).

    Built only from a local weights file; ``open_clip`` and ``torch`` must be installed by the
    user (they are not brandloop dependencies).
    """

    def __init__(self, architecture: str, weights_path: Path) -> None:
        try:
            import open_clip
            import torch
        except ImportError as exc:
            raise BadInputError(
                "alignment scoring needs open-clip and torch installed; it is optional and off "
                "by default"
            ) from exc
        if not weights_path.is_file():
            raise BadInputError(f"alignment weights {weights_path} do not exist")
        model, _, preprocess = open_clip.create_model_and_transforms(
            architecture, pretrained=str(weights_path)
        )
        model.eval()
        self._torch: Any = torch
        self._model: Any = model
        self._preprocess: Any = preprocess
        self._tokenizer: Any = open_clip.get_tokenizer(architecture)

    def score(self, image: Image.Image, prompt: str) -> float:
        torch = self._torch
        with torch.no_grad():
            pixels = self._preprocess(image.convert("RGB")).unsqueeze(0)
            tokens = self._tokenizer([prompt])
            image_features = self._model.encode_image(pixels)
            text_features = self._model.encode_text(tokens)
            image_features = image_features / image_features.norm(dim=-1, keepdim=True)
            text_features = text_features / text_features.norm(dim=-1, keepdim=True)
            similarity = float((image_features @ text_features.T).item())
        return min(max((similarity - 0.15) / 0.20, 0.0), 1.0)


def load_alignment_scorer(policy: AlignmentPolicy) -> AlignmentScorer | None:
    """The configured scorer, or ``None`` when alignment is off (the default)."""
    if not policy.enabled:
        return None
    if policy.weights_path is None:
        raise BadInputError("alignment is enabled but no weights_path is set in the policy")
    return OpenClipScorer(policy.architecture, policy.weights_path)
