"""A replayed answer (``Idempotency-Key``) shows an image deleted since as deleted.

The idempotency record keeps the first answer's bytes; an image that answer linked
(``"path": "/v1/artifacts/<sha256>"``) may have been deleted since (``DELETE
/v1/artifacts/{sha256}``). A replay then marks it exactly as a fresh ``GET`` of the job does
(``deleted: true``, ``deleted_at``, no ``path``: :mod:`brandloop.registry.deleted_images`); the
rest of the answer is the first one, unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from brandloop.domain import AcceptedImage
from brandloop.registry.deleted_images import deleted_copies, marked_images

__all__ = ["ARTIFACT_PATH", "with_deleted_images"]

#: how an answer links an image whose bytes it can fetch (``api/jobs/service.py``)
ARTIFACT_PATH = "/v1/artifacts/"


def with_deleted_images(session: Session, *, tenant: str, body: str) -> str:
    """``body`` (a stored JSON answer) with each image it links that ``tenant`` has deleted
    since marked deleted; ``body`` itself when it links none (the bytes as first answered)."""
    if ARTIFACT_PATH not in body:
        return body
    try:
        answer = json.loads(body)
    except ValueError:
        return body
    linked: list[dict[str, Any]] = []
    _collect(answer, linked)
    deleted = deleted_copies(session, tenant=tenant, shas=(i["sha256"] for i in linked))
    if not deleted:
        return body
    for image in linked:
        if image["sha256"] in deleted:
            (marked,) = marked_images([image], dict(deleted))
            shown = AcceptedImage.model_validate(marked).model_dump(mode="json")
            image.clear()
            image.update(shown)
    # as FastAPI's JSONResponse writes an answer
    return json.dumps(answer, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _collect(value: Any, linked: list[dict[str, Any]]) -> None:
    """Each image in ``value`` that links its artifact, in place (so marking it edits the
    answer)."""
    if isinstance(value, dict):
        sha = value.get("sha256")
        if isinstance(sha, str) and value.get("path") == f"{ARTIFACT_PATH}{sha}":
            linked.append(value)
            return
        for item in value.values():
            _collect(item, linked)
    elif isinstance(value, list):
        for item in value:
            _collect(item, linked)
