"""remember: what was accepted goes into the brand's memory for later tasks to recall: the
prompt with its model, seed and palette emphasis, and a descriptor of the image's colours,
each marked with the digest of the kit it was made under. Record ids are the content, so a
replay of an accepted image (or a retried run) stores nothing new."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from langgraph.runtime import Runtime
from PIL import Image

from brandloop.agent.context import RunContext
from brandloop.agent.kit_memory import memory_kit_digest
from brandloop.agent.replay import mark
from brandloop.agent.state import RunState
from brandloop.domain import Decision
from brandloop.memory.store import BrandMemory, MemoryUnavailableError
from brandloop.tools.composer import leads_with_palette
from brandloop.tools.scoring.colour import dominant_colours, lab_to_hex
from brandloop.tools.scoring.similarity import descriptor_of


def describe_colours(data: bytes, k: int = 5) -> list[tuple[str, float]]:
    """The image's dominant colours as (hex, coverage), largest first."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return [(lab_to_hex(lab), round(cov, 4)) for lab, cov in dominant_colours(rgb, k)]


async def remember(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    brand = state.get("brand_id")  # memory is keyed by the brand's exact registry id
    if ctx.memory is None or brand is None:
        return {}
    try:
        stored = _remember(state, ctx, ctx.memory, brand)
    except MemoryUnavailableError as exc:  # the images are made and paid for: the run still ends
        decision = Decision(
            node="remember", action="unavailable", reason=f"memory unavailable, not kept: {exc}"
        )
        ctx.emit(state["run_id"], "remember", "decision", decision.model_dump(mode="json"))
        return {"decisions": [decision]}
    ctx.emit(state["run_id"], "remember", "remembered", {"prompts": stored})
    accepted = len(state.get("accepted", []))
    if stored < accepted:
        # its prompts carry a note forgotten while it ran: no repeat may serve them again
        with ctx.db.session() as session:
            mark(session, run_id=state["run_id"], key=None)
        decision = Decision(
            node="remember",
            action="not_kept",
            reason=f"{accepted - stored} accepted prompt(s) not kept: a style note the run "
            "recalled was forgotten since, and its text is in the prompt",
        )
        ctx.emit(state["run_id"], "remember", "decision", decision.model_dump(mode="json"))
        return {"decisions": [decision]}
    return {}


def _remember(state: RunState, ctx: RunContext, memory: BrandMemory, brand: str) -> int:
    request = state["request"]
    kit = memory_kit_digest(state["brand"])  # later runs keep to the records of their kit
    stored = 0
    for attempt_id in state.get("accepted", []):
        attempt = state["attempts"][attempt_id]
        seed = (
            attempt.seed_returned if attempt.seed_returned is not None else attempt.candidate.seed
        )
        emphasis = "strong" if leads_with_palette(attempt.candidate.prompt) else "normal"
        kept = memory.remember_prompt(
            tenant=ctx.tenant,
            brand=brand,
            prompt=attempt.candidate.prompt,
            model=attempt.candidate.model,
            seed=seed,
            template=attempt.candidate.template,
            run_id=state["run_id"],
            campaign_id=request.campaign_id,
            scores=attempt.scores.values() if attempt.scores else {},
            extra={"emphasis": emphasis, "modifiers": "; ".join(attempt.candidate.modifiers)},
            kit=kit,
            # forgetting one of them forgets this prompt; a run checkpointed before runs kept the
            # ids has none (None), and forget falls back to the prompt's text
            notes=state.get("style_note_ids"),
        )
        if attempt.artifact_sha256 is not None:
            memory.remember_descriptor(
                tenant=ctx.tenant,
                brand=brand,
                run_id=state["run_id"],
                attempt_id=attempt.id,
                colours=describe_colours(ctx.artifacts.get(attempt.artifact_sha256)),
                model=attempt.candidate.model,
                seed=seed,
                campaign_id=request.campaign_id,
                image_descriptor=descriptor_of(ctx.artifacts.get(attempt.artifact_sha256)),
                kit=kit,
            )
        stored += kept is not None
    return stored
