"""score: quality signals from the pixels of every image that passed moderation.

Per image: palette, sharpness, exposure, contrast, colourfulness, format match, similarity to
the brand's accepted images under its current kit (when memory holds their descriptors) and
the optional alignment scorer. Across the run's set: near-duplicates by perceptual hash, against the images already
accepted and the earlier ones of this round. An image that cannot be decoded becomes an
``error`` attempt, not a crash.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import numpy.typing as npt
from langgraph.runtime import Runtime

from brandloop.agent.context import RunContext
from brandloop.agent.kit_memory import KitScope, kit_scope
from brandloop.agent.state import RunState
from brandloop.domain import Attempt, BrandKit
from brandloop.errors import present
from brandloop.memory.store import BrandMemory, MemoryUnavailableError
from brandloop.registry import crud
from brandloop.tools.providers.errors import MalformedResponseError
from brandloop.tools.scoring.decode import decode_image
from brandloop.tools.scoring.signals import ImageAnalysis, analyse_image, score_set
from brandloop.tools.scoring.similarity import decode_descriptor, phash

log = logging.getLogger(__name__)

#: How many of the brand's accepted-image descriptors similarity compares with.
REFERENCE_LIMIT = 100


def reference_descriptors(
    memory: BrandMemory, *, tenant: str, brand_id: str, scope: KitScope
) -> list[npt.NDArray[np.float32]]:
    """The descriptors of the brand's accepted images that similarity compares with (up to
    :data:`REFERENCE_LIMIT`): only those made under the brand's current kit (``scope``), so a
    replaced kit's new images are not judged against the old kit's. Memory is keyed by the
    brand's registry id (``brand_…``), never its name or slug: the agent and ``brandloop
    score`` both read them here."""
    found: list[npt.NDArray[np.float32]] = []
    for hit in memory.descriptors(
        tenant=tenant, brand=brand_id, limit=REFERENCE_LIMIT, kit=scope.digest
    ):
        if not scope.admits(hit):
            continue
        encoded = hit.metadata.get("image_descriptor")
        if isinstance(encoded, str):
            try:
                found.append(decode_descriptor(encoded))
            except ValueError:
                continue
    return found


def _references(
    ctx: RunContext, brand_id: str | None, kit: BrandKit
) -> list[npt.NDArray[np.float32]]:
    if ctx.memory is None or brand_id is None or ctx.scoring.similarity.weight <= 0:
        return []
    scope = kit_scope(ctx.db, tenant=ctx.tenant, brand_id=brand_id, kit=kit)
    try:
        return reference_descriptors(ctx.memory, tenant=ctx.tenant, brand_id=brand_id, scope=scope)
    except MemoryUnavailableError as exc:  # recall said so in its decision; score without
        log.warning("similarity without references: %s", exc)
        return []


def _accepted_hashes(ctx: RunContext, state: RunState) -> tuple[list[int], list[str]]:
    """Perceptual hashes of the images this run already accepted (their files are local)."""
    hashes: list[int] = []
    labels: list[str] = []
    for attempt_id in state.get("accepted", []):
        attempt = state["attempts"][attempt_id]
        if attempt.artifact_sha256 is None:
            continue
        image = decode_image(
            ctx.artifacts.get(attempt.artifact_sha256), max_pixels=ctx.scoring.max_pixels
        )
        hashes.append(phash(image.convert("L")))
        labels.append(f"accepted {attempt_id}")
    return hashes, labels


async def score(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    brand = state["brand"]
    pending = [
        state["attempts"][c.id]
        for c in state.get("candidates", [])
        if state["attempts"][c.id].outcome == "pending"
    ]
    references = await asyncio.to_thread(_references, ctx, state.get("brand_id"), brand)
    # The adapt conflict policy accepts the brief's own colours as accents (capped share).
    accents = state.get("accent_hexes", []) if state.get("emphasis") != "strong" else []

    async def one(attempt: Attempt) -> ImageAnalysis | str:
        data = ctx.artifacts.get(present(attempt.artifact_sha256, f"{attempt.id}'s image"))
        try:
            return await asyncio.to_thread(
                analyse_image,
                data,
                brand=brand,
                width=attempt.candidate.width,
                height=attempt.candidate.height,
                policy=ctx.scoring,
                references=references,
                accents=accents,
                accent_max_share=ctx.brand_policy.accent_max_share,
            )
        except MalformedResponseError as exc:
            return str(exc)

    results = await asyncio.gather(*(one(a) for a in pending))
    earlier, earlier_labels = await asyncio.to_thread(_accepted_hashes, ctx, state)
    analysed = [
        (a, r) for a, r in zip(pending, results, strict=True) if isinstance(r, ImageAnalysis)
    ]
    set_scores = score_set(
        [r for _, r in analysed],
        ctx.scoring,
        earlier=earlier,
        labels=[a.id for a, _ in analysed],
        earlier_labels=earlier_labels,
    )
    scored: list[Attempt] = [
        attempt.model_copy(update={"scores": scores})
        for (attempt, _), scores in zip(analysed, set_scores, strict=True)
    ]
    broken = [
        attempt.model_copy(update={"outcome": "error", "error": f"unreadable image: {result}"})
        for attempt, result in zip(pending, results, strict=True)
        if isinstance(result, str)
    ]
    with ctx.db.session() as session:
        for attempt in scored + broken:
            crud.upsert_attempt(session, run_id=state["run_id"], attempt=attempt)
    for attempt in scored:
        scores = present(attempt.scores, f"{attempt.id}'s scores")
        ctx.emit(
            state["run_id"],
            "score",
            "scored",
            {
                "attempt": attempt.id,
                "composite": round(scores.composite, 4),
                "signals": scores.values(),
                "failed": scores.failed,
                "explanations": {name: sig.explanation for name, sig in scores.signals.items()},
            },
        )
    for attempt in broken:
        ctx.emit(
            state["run_id"], "score", "unreadable", {"attempt": attempt.id, "error": attempt.error}
        )
    return {"attempts": {a.id: a for a in scored + broken}}
