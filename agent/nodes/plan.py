"""plan: choose the next candidates - prompt, model, seed - that fit the remaining budget."""

from __future__ import annotations

import hashlib
from typing import Any

from langgraph.runtime import Runtime

from agent.context import RunContext
from agent.state import RunState
from brandloop.domain import Candidate, Decision
from tools.composer import compose
from tools.moderation.text import moderate_text


def _base_seed(state: RunState) -> int:
    request = state["request"]
    if request.seed is not None:
        return request.seed
    digest = hashlib.sha256(state["run_id"].encode()).hexdigest()
    return int(digest[:8], 16)


async def plan(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    request = state["request"]
    brand = state["brand"]
    iteration = state.get("iteration", 0) + 1
    needed = request.count - len(state.get("accepted", []))
    model = ctx.models[min(state.get("model_index", 0), len(ctx.models) - 1)]
    remaining = ctx.budget_usd - state.get("spent_usd", 0.0)
    affordable = (
        int((remaining + 1e-9) // model.price_per_image_usd)
        if model.price_per_image_usd
        else needed
    )
    count = min(needed, affordable)
    if count <= 0:
        decision = Decision(
            node="plan",
            action="stop_budget",
            reason=f"remaining budget ${remaining:.3f} cannot pay for one {model.id} image "
            f"(${model.price_per_image_usd:.3f})",
        )
        ctx.emit(state["run_id"], "plan", "decision", decision.model_dump(mode="json"))
        return {
            "candidates": [],
            "iteration": iteration,
            "decisions": [decision],
            "reason": decision.reason,
        }

    emphasis = state.get("emphasis", "normal")
    modifiers = state.get("modifiers", [])
    prompt, negative = compose(
        state["template"],
        brand=brand,
        brief=request.brief,
        modifiers=modifiers,
        style_notes=state.get("style_notes", []),
        emphasis=emphasis,
    )
    verdict = moderate_text(prompt, forbidden_terms=brand.forbidden_terms, source="prompt")
    if not verdict.allowed:
        decision = Decision(
            node="plan",
            action="refuse_prompt",
            reason="rendered prompt failed moderation before any paid call: "
            + "; ".join(verdict.reasons),
        )
        ctx.emit(state["run_id"], "plan", "decision", decision.model_dump(mode="json"))
        return {
            "candidates": [],
            "iteration": iteration,
            "status": "refused",
            "reason": decision.reason,
            "decisions": [decision],
        }

    width, height = request.dimensions()
    cursor = state.get("seed_cursor", _base_seed(state))
    recalled = [s for s in state.get("recalled_seeds", []) if iteration == 1][:count]
    seeds = recalled + [(cursor + i) % 2**32 for i in range(count - len(recalled))]
    candidates = [
        Candidate(
            id=f"{state['run_id']}-i{iteration}-c{index}",
            template=state["template"].ref,
            prompt=prompt,
            negative_prompt=negative,
            model=model.id,
            seed=seed,
            width=width,
            height=height,
            iteration=iteration,
            estimated_cost_usd=model.price_per_image_usd,
            modifiers=list(modifiers),
        )
        for index, seed in enumerate(seeds)
    ]
    short = " (budget allows only these)" if count < needed else ""
    decision = Decision(
        node="plan",
        action="plan" if iteration == 1 else "replan",
        reason=f"round {iteration}: {count} candidate(s) on {model.id} at ${model.price_per_image_usd:.3f} each"
        f"{short}; palette emphasis {emphasis}"
        + (f"; modifiers: {', '.join(modifiers)}" if modifiers else "")
        + (f"; reusing {len(recalled)} remembered seed(s)" if recalled else ""),
    )
    ctx.emit(state["run_id"], "plan", "decision", decision.model_dump(mode="json"))
    return {
        "candidates": candidates,
        "iteration": iteration,
        "seed_cursor": cursor + count - len(recalled),
        "decisions": [decision],
    }
