"""plan: choose the next candidates - prompt, model, seed - that fit every remaining budget.

The model of each candidate comes from the bandit (``agent/bandit.py``) over the models the
diagnosis still allows (the ladder from ``model_index`` up, minus excluded models, minus models
slower than the latency target), restricted to what the tightest budget can pay for: the
request's, the campaign's and the tenant's.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from langgraph.runtime import Runtime

from brandloop.agent.bandit import arm_stats, choose
from brandloop.agent.budgets import headroom
from brandloop.agent.context import RunContext
from brandloop.agent.diagnosis import quality_index
from brandloop.agent.state import RunState
from brandloop.domain import Candidate, Decision, ModelSpec
from brandloop.policies.catalog import image_price
from brandloop.tools.composer import compose
from brandloop.tools.moderation.text import moderate_text


def _base_seed(state: RunState) -> int:
    request = state["request"]
    if request.seed is not None:
        return request.seed
    digest = hashlib.sha256(state["run_id"].encode()).hexdigest()
    return int(digest[:8], 16)


def eligible_models(
    ctx: RunContext, state: RunState, latencies: dict[str, float | None]
) -> tuple[list[ModelSpec], list[str]]:
    """The models the diagnosis still allows, and notes on what was left out and why."""
    floor = min(state.get("model_index", 0), len(ctx.models) - 1)
    excluded = set(state.get("excluded_models", []))
    notes: list[str] = []
    models = [m for m in ctx.models[floor:] if m.id not in excluded]
    target = ctx.policy.latency_target_s
    if target is not None:
        fast = [m for m in models if (latencies.get(m.id) or 0.0) <= target]
        slow = [m.id for m in models if m not in fast]
        if slow:
            notes.append(f"over the {target:g}s latency target: {', '.join(slow)}")
        models = fast or models
    if not models:
        models = [ctx.models[-1]]
        notes.append("every model was excluded; using the top tier")
    return models, notes


def _quality(spec: ModelSpec, boost: int) -> str | None:
    """The quality setting to ask for after ``boost`` soft rounds; None: the model's default."""
    for step in range(boost, 0, -1):
        index = quality_index(spec, step)
        if index is not None:
            return spec.qualities[index]
    return None


def _stop(ctx: RunContext, state: RunState, iteration: int, reason: str) -> dict[str, Any]:
    decision = Decision(node="plan", action="stop_budget", reason=reason)
    ctx.emit(state["run_id"], "plan", "decision", decision.model_dump(mode="json"))
    return {"candidates": [], "iteration": iteration, "decisions": [decision], "reason": reason}


async def plan(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    request = state["request"]
    brand = state["brand"]
    template = state["template"]
    iteration = state.get("iteration", 0) + 1
    needed = request.count - len(state.get("accepted", []))

    remaining = ctx.budget_usd - state.get("spent_usd", 0.0)
    budget_label = "request budget"
    with ctx.db.session() as session:
        outside = headroom(session, tenant=ctx.tenant, campaign_id=request.campaign_id)
        brand_id = state.get("brand_id")
        stats = arm_stats(session, brand_id=brand_id, template_ref=template.ref) if brand_id else {}
    if outside is not None and outside.remaining_usd < remaining:
        remaining, budget_label = outside.remaining_usd, outside.label
    models, notes = eligible_models(ctx, state, {mid: s.mean_latency_s for mid, s in stats.items()})
    width, height = request.dimensions()
    quality = {m.id: _quality(m, state.get("quality_boost", 0)) for m in models}
    price = {
        m.id: image_price(m, width=width, height=height, quality=quality[m.id]) for m in models
    }
    affordable = [m for m in models if price[m.id] <= remaining + 1e-9]
    if not affordable:
        cheapest = min(models, key=lambda m: price[m.id])
        return _stop(
            ctx,
            state,
            iteration,
            f"remaining {budget_label} ${max(remaining, 0.0):.3f} cannot pay for one "
            f"{cheapest.id} image (${price[cheapest.id]:.3f})",
        )

    # Seeded by the request's seed when it has one, so a seeded request plans reproducibly;
    # by the run id otherwise. Either way a resumed run draws the same.
    draw_seed = request.seed if request.seed is not None else state["run_id"]
    rng = random.Random(f"{draw_seed}:{iteration}")
    choices = choose(
        affordable,
        stats,
        count=needed,
        rng=rng,
        exploration_share=ctx.policy.exploration_share,
        prior_strength=ctx.policy.prior_strength,
        prices=price,
    )
    planned: list[ModelSpec] = []
    left = remaining
    for choice in choices:
        spec = choice.model
        if price[spec.id] > left + 1e-9:
            fits = [m for m in affordable if price[m.id] <= left + 1e-9]
            if not fits:
                break
            spec = max(fits, key=lambda m: m.quality_baseline)
        planned.append(spec)
        left -= price[spec.id]
    explored = sum(1 for c in choices[: len(planned)] if c.explored)

    emphasis = state.get("emphasis", "normal")
    modifiers = state.get("modifiers", [])
    notes_for_prompt = list(state.get("style_notes", []))
    anchor = state.get("anchor_colours", [])
    if anchor:
        notes_for_prompt.append("campaign colours in this order: " + ", ".join(anchor))
    prompt, negative = compose(
        template,
        brand=brand,
        brief=request.brief,
        modifiers=modifiers,
        style_notes=notes_for_prompt,
        emphasis=emphasis,
        avoid=request.avoid,
        shifts=request.shifts,
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
    prompts = [prompt] * len(planned)
    written = 0
    if ctx.writer is not None and iteration == 1 and planned:
        variants = await ctx.writer.variants(
            base_prompt=prompt, brief=request.brief, brand=brand.name, n=len(planned)
        )
        safe = [
            v
            for v in variants
            if moderate_text(v, forbidden_terms=brand.forbidden_terms, source="prompt").allowed
        ]
        for index, variant in enumerate(safe[: len(planned)]):
            prompts[index] = variant
            written += 1

    cursor = state.get("seed_cursor", _base_seed(state))
    count = len(planned)
    recalled = [s for s in state.get("recalled_seeds", []) if iteration == 1][:count]
    seeds = recalled + [(cursor + i) % 2**32 for i in range(count - len(recalled))]
    candidates = [
        Candidate(
            id=f"{state['run_id']}-i{iteration}-c{index}",
            template=template.ref,
            prompt=prompts[index],
            negative_prompt=negative,
            model=spec.id,
            seed=seed,
            width=width,
            height=height,
            iteration=iteration,
            estimated_cost_usd=price[spec.id],
            params={"quality": quality[spec.id]} if quality[spec.id] else {},
            modifiers=list(modifiers),
        )
        for index, (spec, seed) in enumerate(zip(planned, seeds, strict=True))
    ]
    by_model: dict[str, int] = {}
    for spec in planned:
        by_model[spec.id] = by_model.get(spec.id, 0) + 1
    spread = ", ".join(f"{n}× {mid}" for mid, n in by_model.items())
    cost = sum(price[spec.id] for spec in planned)
    short = " (budget allows only these)" if count < needed else ""
    reason = (
        f"round {iteration}: {spread} (${cost:.3f}, {budget_label} left ${remaining:.3f}){short}; "
        f"bandit over {', '.join(m.id for m in affordable)}, {explored} exploring; "
        f"palette emphasis {emphasis}"
        + (f"; modifiers: {', '.join(modifiers)}" if modifiers else "")
        + (f"; reusing {len(recalled)} remembered seed(s)" if recalled else "")
        + (f"; {written} LLM-written variant(s)" if written else "")
        + (f"; {'; '.join(notes)}" if notes else "")
    )
    signals = {f"p_accept[{c.model.id}]": round(c.posterior_mean, 4) for c in choices}
    signals["remaining_usd"] = round(remaining, 6)
    decision = Decision(
        node="plan",
        action="plan" if iteration == 1 else "replan",
        reason=reason,
        signals=signals,
    )
    ctx.emit(state["run_id"], "plan", "decision", decision.model_dump(mode="json"))
    return {
        "candidates": candidates,
        "iteration": iteration,
        "seed_cursor": cursor + count - len(recalled),
        "decisions": [decision],
    }
