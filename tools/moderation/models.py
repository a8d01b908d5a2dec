"""The shipped models moderation runs, located inside their installed packages and
checksum-verified before use (see ``tools/moderation/PROVENANCE.md``). Nothing is downloaded.

- NudeNet 3.4.2 ``320n.onnx`` (MIT): an 18-label body-part detector (YOLOv8n at 320 px).
- alt-profanity-check 1.9.1 (MIT): a linear SVM over TF-IDF, two joblib files, trained with
  the scikit-learn it pins (1.9.1); loading with another scikit-learn is refused by the pin.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from brandloop.errors import BrandloopError
from brandloop.once import once

NUDENET_SHA256: Final = "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f"
PROFANITY_SHA256: Final = {
    "model.joblib": "aeafc04849d4d93db4721cf30a86ebf22085595294b8a07d51918e7fa98f538b",
    "vectorizer.joblib": "19c5200dc6a41f026e0558e2f164f5fe8d8f58e502b46b37e4385037fcfa4831",
}


class ModelIntegrityError(BrandloopError):
    """A shipped model is missing or is not the file we verified."""


def _package_dir(name: str) -> Path:
    """Where an installed package lives, found without importing (running) it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelIntegrityError(f"package {name!r} is not installed; reinstall brandloop")
    return Path(next(iter(spec.submodule_search_locations)))


def verified(path: Path, sha256: str) -> Path:
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ModelIntegrityError(f"cannot read model file {path}: {exc}") from exc
    if digest != sha256:
        raise ModelIntegrityError(f"model file {path} has sha256 {digest}, expected {sha256}")
    return path


def nudenet_model_path() -> Path:
    return verified(_package_dir("nudenet") / "320n.onnx", NUDENET_SHA256)


@dataclass(frozen=True)
class ProfanityModel:
    """alt-profanity-check's vectoriser and classifier; ``probability`` of offensive text.

    The classifier is scikit-learn's ``CalibratedClassifierCV`` over five ``LinearSVC`` folds
    with sigmoid calibration. Its ``predict_proba`` spends ~10 ms per call in input checks,
    more than the text gate's whole budget, so :meth:`probabilities` computes the same
    figures with numpy from the fitted parameters: the mean over folds of
    ``1 / (1 + exp(a * (x·w + c) + b))``. ``tests/tools/test_text_moderation.py`` checks it
    against ``predict_proba``.
    """

    vectorizer: Any
    model: Any

    @functools.cached_property
    def _folds(self) -> tuple[Any, Any, Any, Any]:
        import numpy as np

        if getattr(self.model, "method", None) != "sigmoid" or list(self.model.classes_) != [0, 1]:
            raise ModelIntegrityError(
                "the profanity model is not a binary sigmoid-calibrated model"
            )
        folds = self.model.calibrated_classifiers_
        weights = np.stack([f.estimator.coef_[0] for f in folds], axis=1)
        intercepts = np.array([f.estimator.intercept_[0] for f in folds])
        a = np.array([f.calibrators[0].a_ for f in folds])
        b = np.array([f.calibrators[0].b_ for f in folds])
        return weights, intercepts, a, b

    def probabilities(self, texts: list[str]) -> list[float]:
        import numpy as np

        weights, intercepts, a, b = self._folds
        decisions = np.asarray(self.vectorizer.transform(texts) @ weights) + intercepts
        return [float(p) for p in (1.0 / (1.0 + np.exp(a * decisions + b))).mean(axis=1)]

    def reference_probabilities(self, texts: list[str]) -> list[float]:
        """The same through scikit-learn's own ``predict_proba`` (slow; for checks)."""
        matrix = self.vectorizer.transform(texts)
        return [float(p[1]) for p in self.model.predict_proba(matrix)]


@once
def profanity_model() -> ProfanityModel:
    """Load (once) the verified profanity model; joblib unpickles only files we checksummed."""
    import joblib  # scikit-learn and joblib load in ~0.7 s; only when first needed

    data = _package_dir("profanity_check") / "data"
    vectorizer = joblib.load(
        verified(data / "vectorizer.joblib", PROFANITY_SHA256["vectorizer.joblib"])
    )
    model = joblib.load(verified(data / "model.joblib", PROFANITY_SHA256["model.joblib"]))
    return ProfanityModel(vectorizer=vectorizer, model=model)
