"""recall: what this brand (and campaign) already established - style notes, prompts, seeds,
the palette emphasis that worked and the colours the campaign's accepted images share; the
prompts and colours only of the brand's current kit (``brandloop.agent.kit_memory``)."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime

from brandloop.agent.context import RunContext
from brandloop.agent.kit_memory import kit_scope, memory_kit_digest
from brandloop.agent.state import RunState
from brandloop.domain import BrandKit, Decision
from brandloop.memory.store import MemoryHit, MemoryUnavailableError
from brandloop.tools.moderation.keys import redact_keys
from brandloop.tools.moderation.pii import redact
from brandloop.tools.scoring.colour import delta_e_2000, hex_to_lab

ANCHOR_COLOURS = 3
#: A campaign's anchor colours are the first image's dominant colours within this many times
#: the palette signal's on-palette radius (``near_delta_e``, ΔE2000) of a brand colour: the
#: brand's colours as that image rendered them, never an accent it happened to carry.
ANCHOR_RADIUS = 2.0


def on_brand(colours: list[str], brand: BrandKit, radius: float) -> list[str]:
    """The ``#rrggbb`` codes of ``colours`` (in order) within ``radius`` ΔE2000 of a colour of
    the brand's palette."""
    palette = [hex_to_lab(colour.hex) for colour in brand.palette]
    if not palette:
        return []
    kept = []
    for code in colours:
        try:
            lab = hex_to_lab(code)
        except ValueError:  # a damaged record: not a colour to follow
            continue
        if min(float(delta_e_2000(lab, ref)) for ref in palette) <= radius:
            kept.append(code)
    return kept


async def recall(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    request = state["request"]
    brand_id = state.get("brand_id")  # memory is keyed by the brand's exact registry id
    if ctx.memory is None or brand_id is None:
        return _without_memory(state, runtime, "skip", "memory is off for this run")
    brand = state["brand"]
    try:
        hits = ctx.memory.recall(
            tenant=ctx.tenant,
            brand=brand_id,
            query=request.brief,
            k=5,
            campaign_id=request.campaign_id,
            kit=memory_kit_digest(brand),
        )
        described: list[MemoryHit] = []
        if request.campaign_id is not None:
            described = ctx.memory.descriptors(
                tenant=ctx.tenant,
                brand=brand_id,
                campaign_id=request.campaign_id,
                limit=1,
                kit=memory_kit_digest(brand),
            )
    except MemoryUnavailableError as exc:
        # a damaged or unreachable store must not stop a run of the brand: this one goes without
        return _without_memory(
            state, runtime, "unavailable", f"memory unavailable, running without it: {exc}"
        )
    # prompts and image colours steer by what was accepted: only those of the current kit
    # (notes are the brand's words, not a kit's: they stay)
    scope = kit_scope(ctx.db, tenant=ctx.tenant, brand_id=brand_id, kit=brand)
    hits = [hit for hit in hits if hit.kind == "note" or scope.admits(hit)]
    described = [hit for hit in described if scope.admits(hit)]
    # notes are redacted when added; one stored before that, or by another path, is redacted
    # here, so personal data in a note never reaches a prompt, a provider or a receipt
    # (key-shaped tokens first, as at intake: another service's API key pasted into a note)
    kinds = tuple(ctx.moderation.pii.redact)
    keyless = [redact_keys(hit.text) for hit in hits if hit.kind == "note"]
    redactions = [redact(text, kinds) for text, _ in keyless]
    # remember names them on each prompt it keeps, so forgetting a note forgets those prompts
    note_ids = [hit.id for hit in hits if hit.kind == "note"]
    notes = [r.text for r in redactions]
    redacted = sorted(
        {f.kind for r in redactions for f in r.findings} | {"key" for _, n in keyless if n}
    )
    prompts = [hit for hit in hits if hit.kind == "prompt"]
    seeded = [int(hit.metadata["seed"]) for hit in prompts if hit.metadata.get("seed") is not None]
    # one seed is often under several prompts (a run that reused a recalled seed stores it
    # again): each is recalled once, or a run of two images would plan the same seed twice
    seeds = list(dict.fromkeys(seeded))
    models = [str(hit.metadata["model"]) for hit in prompts if hit.metadata.get("model")]
    strong = sum(1 for hit in prompts if hit.metadata.get("emphasis") == "strong")
    emphasis: Literal["normal", "strong"] = (
        "strong" if prompts and strong * 2 >= len(prompts) else state.get("emphasis", "normal")
    )
    anchor: list[str] = []
    if described:
        colours = str(described[0].metadata.get("colours", "")).split()
        radius = ANCHOR_RADIUS * ctx.scoring.palette.near_delta_e
        anchor = on_brand(colours, brand, radius)[:ANCHOR_COLOURS]
    parts = [
        f"{len(hits)} memories for {brand.name}: {len(notes)} style notes, "
        f"{len(seeded)} accepted prompts with seeds"
        + (f" ({len(seeds)} distinct)" if len(seeds) < len(seeded) else "")
    ]
    if emphasis == "strong" and strong:
        parts.append(f"{strong} of them needed the strict palette clause, so it starts strict")
    if anchor:
        parts.append(f"campaign colours {', '.join(anchor)} from its first accepted image")
    if redacted:
        parts.append("personal data redacted from the style notes: " + ", ".join(redacted))
    decision = Decision(
        node="recall",
        action="recalled",
        reason="; ".join(parts),
        signals={
            "memories": float(len(hits)),
            "strict_share": strong / len(prompts) if prompts else 0.0,
        },
    )
    ctx.emit(state["run_id"], "recall", "decision", decision.model_dump(mode="json"))
    return {
        "style_notes": notes,
        "style_note_ids": note_ids,
        "recalled_seeds": seeds,
        "recalled_models": models,
        "emphasis": emphasis,
        "anchor_colours": anchor,
        "decisions": [decision],
    }


def _without_memory(
    state: RunState, runtime: Runtime[RunContext], action: str, reason: str
) -> dict[str, Any]:
    decision = Decision(node="recall", action=action, reason=reason)
    runtime.context.emit(state["run_id"], "recall", "decision", decision.model_dump(mode="json"))
    return {
        "style_notes": [],
        "style_note_ids": [],
        "recalled_seeds": [],
        "recalled_models": [],
        "decisions": [decision],
    }
