"""What an accepted image's C2PA manifest says: how it was made (a ``c2pa.created`` action with
its IPTC digital source type and the generating model), what brandloop did afterwards, and a
``brandloop.receipt`` assertion projected from the registry's receipt.

The projection is a pure function of the stored receipt, so ``verify`` recomputes it from the
registry and compares. It keeps identifiers, numbers and the acceptance rule, never the brief or
the prompts, and every string in it passes the PII redactor on the way in.
"""

from __future__ import annotations

import uuid
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

from brandloop.artifacts import MEDIA_TYPES
from brandloop.domain import AcceptanceRule, ImageFormat, receipt_digest
from brandloop.providers import PREVIEW_PROVIDER
from brandloop.tools.moderation.pii import ALL_KINDS, redact

IPTC: Final = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED: Final = IPTC + "trainedAlgorithmicMedia"
COMPOSITE_TRAINED: Final = IPTC + "compositeWithTrainedAlgorithmicMedia"
ALGORITHMIC: Final = IPTC + "algorithmicMedia"
RECEIPT_LABEL: Final = "brandloop.receipt"
RECEIPT_SCHEMA: Final = "brandloop.receipt/1"
PIXEL_EDITS: Final = frozenset({"c2pa.cropped", "c2pa.resized"})
FIT_EDITS: Final = ("c2pa.cropped", "c2pa.resized")
TRANSCODED: Final = "c2pa.transcoded"
_EDIT_DESCRIPTIONS: Final = {
    "c2pa.cropped": "centre crop to the requested aspect ratio",
    "c2pa.resized": "resized to the requested size",
    "c2pa.transcoded": "re-encoded to the requested file format",
}


def brandloop_version() -> str:
    try:
        return version("brandloop")
    except PackageNotFoundError:  # pragma: no cover - a checkout without an install
        return "0"


def digital_source_type(provider: str, edits: list[str]) -> str:
    """The IPTC term for how the pixels came to be.

    The procedural preview renderer draws shapes from a seeded formula with no training data:
    ``algorithmicMedia``. A generative model's output is ``trainedAlgorithmicMedia``, or
    ``compositeWithTrainedAlgorithmicMedia`` once brandloop changed its pixels (crop, resize).
    Re-encoding to another format changes no content, so it keeps the term.
    """
    if provider == PREVIEW_PROVIDER:
        return ALGORITHMIC
    return COMPOSITE_TRAINED if PIXEL_EDITS.intersection(edits) else TRAINED


def _pii_safe(value: Any) -> Any:
    """``value`` with every string passed through the PII redactor (all kinds)."""
    if isinstance(value, str):
        return redact(value, ALL_KINDS).text
    if isinstance(value, dict):
        return {str(_pii_safe(k)): _pii_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pii_safe(v) for v in value]
    return value


def receipt_assertion(receipt: dict[str, Any]) -> dict[str, Any]:
    """The ``brandloop.receipt`` assertion for a stored receipt (its JSON form)."""
    acceptance = receipt.get("acceptance")
    rule = AcceptanceRule.model_validate(acceptance) if acceptance else None
    seed = receipt.get("seed_returned")
    data = {
        "schema": RECEIPT_SCHEMA,
        "run_id": receipt["run_id"],
        "attempt_id": receipt["attempt_id"],
        "template": receipt["template"],
        "provider": receipt["provider"],
        "model": receipt["model"],
        "model_version": receipt["model_version"],
        "seed": seed if seed is not None else receipt["seed_requested"],
        "seed_requested": receipt["seed_requested"],
        "scores": receipt.get("scores", {}),
        "composite": receipt.get("composite", 0.0),
        "acceptance": None if rule is None else {**rule.model_dump(mode="json"), "rule": rule.text},
        "cost_usd": receipt.get("cost_usd", 0.0),
        "digital_source_type": receipt.get("digital_source_type"),
        "edits": receipt.get("edits", []),
        "preview": bool(receipt.get("preview", receipt["provider"] == PREVIEW_PROVIDER)),
        "receipt_sha256": receipt_digest(receipt),
    }
    if "cache_hit" in receipt:  # receipts before session 25 say nothing of it, nor do their files
        data["cache_hit"] = bool(receipt["cache_hit"])
        data["replay_of"] = receipt.get("replay_of")
    return dict(_pii_safe(data))


def new_manifest_label() -> str:
    return f"urn:c2pa:{uuid.uuid4()}"


def manifest_definition(
    receipt: dict[str, Any], *, fmt: ImageFormat, label: str, title: str
) -> dict[str, Any]:
    """The manifest the builder signs for one accepted image."""
    created: dict[str, Any] = {
        "action": "c2pa.created",
        "digitalSourceType": receipt["digital_source_type"],
        "softwareAgent": {"name": receipt["model"], "version": receipt["model_version"]},
        "parameters": {"provider": receipt["provider"], "template": receipt["template"]},
    }
    edits = [
        {"action": edit, "description": _EDIT_DESCRIPTIONS.get(edit, edit)}
        for edit in receipt.get("edits", [])
    ]
    return {
        "claim_generator_info": [{"name": "brandloop", "version": brandloop_version()}],
        "label": label,
        "title": title,
        "format": MEDIA_TYPES[fmt],
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": _pii_safe([created, *edits])}},
            {"label": RECEIPT_LABEL, "data": receipt_assertion(receipt)},
        ],
    }
