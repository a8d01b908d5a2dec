"""plan: choose the next candidates - prompt, model, seed - that fit every remaining budget.

The model of each candidate comes from the bandit (``agent/bandit.py``) over the models the
diagnosis still allows (the ladder from ``model_index`` up, minus excluded models, minus models
slower than the latency target), restricted to what the tightest budget can pay for: the
request's, the campaign's and the tenant's. The template's ``model_hints`` and ``quality``
param narrow the models and settings; its other params go with every candidate.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from collections.abc import Callable
from typing import Any

from langgraph.runtime import Runtime
from sqlalchemy.orm import Session

from brandloop.agent.bandit import (
    Arm,
    ArmStats,
    arm_stats,
    arms,
    choose,
    model_latencies,
    posterior,
)
from brandloop.agent.budgets import headroom
from brandloop.agent.context import RunContext
from brandloop.agent.moderation import check_text
from brandloop.agent.outages import unavailable_reason, unreachable_providers
from brandloop.agent.repairs import fix_rates
from brandloop.agent.replay import earlier_accepted, replay_candidates
from brandloop.agent.state import RunState
from brandloop.agent.stopping import COST_WINDOW, Outlook, cost_per_accepted_image, outlook
from brandloop.agent.writer import WriterOutcome
from brandloop.domain import Candidate, Decision, ModelSpec, StopCause, TemplateVersion
from brandloop.policies.catalog import image_price
from brandloop.registry.types import usd
from brandloop.templates.governance import RESERVED_PARAMS
from brandloop.tools import cache as generation_cache
from brandloop.tools.composer import compose
from brandloop.tools.moderation.explain import explain
from brandloop.tools.providers.resilience import circuit_open


def fit_prompt(
    build: Callable[[str, list[str]], tuple[str, str]],
    *,
    brief: str,
    style_notes: list[str],
    limit: int,
    pinned: int = 0,
) -> tuple[str, str, str]:
    """``(prompt, negative, how)``: the prompt ``build(brief, notes)`` renders, fitted to
    ``limit`` characters; ``how`` says what was left out ("" when nothing was).

    A brief within its own limit must not be refused for a prompt the user never wrote: the
    template and the brand's clauses come on top of it. What gives way, in order: the memory
    and style notes, the last first (recall's come nearest to the brief first, so the farthest
    go first; the last ``pinned`` - the campaign's colour order - only once every other has
    gone), then the brief's tail, cut at a word. The template and the brand's clauses
    (palette, required terms) are kept; a template too long on its own is left as it is, for
    moderation to refuse.
    """
    prompt, negative = build(brief, style_notes)
    if len(prompt) <= limit:
        return prompt, negative, ""
    left_out = []
    # the order the notes go in: the unpinned ones from the end, then the pinned from the end
    loose = len(style_notes) - pinned
    going = [*reversed(range(loose)), *reversed(range(loose, len(style_notes)))]

    def without(dropped: int) -> list[str]:
        gone = set(going[:dropped])
        return [note for i, note in enumerate(style_notes) if i not in gone]

    # the fewest notes to leave out (the prompt only shortens as notes go): a binary search,
    # so a brand with hundreds of notes costs a handful of renders
    low, high = 1, len(going)
    while low < high:
        middle = (low + high) // 2
        if len(build(brief, without(middle))[0]) <= limit:
            high = middle
        else:
            low = middle + 1
    if going:
        style_notes = without(low)
        prompt, negative = build(brief, style_notes)
        left_out.append(
            "the memory and style notes were left out"
            if low == len(going)
            else f"{low} of {len(going)} memory and style notes were left out (the farthest "
            "from the brief first)"
        )
    kept = brief.strip()
    while len(prompt) > limit and kept:
        kept = _at_a_word(kept, max(len(kept) - (len(prompt) - limit), 0))
        prompt, negative = build(kept, style_notes)
    if kept != brief.strip():
        left_out.append(
            f"the brief was cut to its first {len(kept)} of {len(brief.strip())} characters"
        )
    return prompt, negative, "; ".join(left_out)


#: what belongs to the character before it: a text is never cut just before one of these
_JOINED = "\u200d\ufe0e\ufe0f"


def _at_a_word(text: str, size: int) -> str:
    """``text`` cut to at most ``size`` characters, at its last word break; a text written
    without spaces (Chinese, Japanese, a row of emoji) is cut where it must be, never emptied,
    and never between a character and the marks, joiners or selectors that go with it."""
    cut = text[:size]
    if " " in cut:
        return cut[: cut.rfind(" ")].rstrip(" ,;.")
    while (
        size
        and size < len(text)
        and (
            unicodedata.combining(text[size]) or text[size] in _JOINED or text[size - 1] in _JOINED
        )
    ):
        size -= 1
    return text[:size].rstrip(" ,;.，。、")


def round_seed(seed: int, iteration: int) -> int:
    """The first seed of round ``iteration`` of a request that names ``seed``.

    Round one starts at the request's own seed (its candidates take ``seed, seed+1, ...``, as a
    backend numbers a batch). A later round starts at a seed drawn from a sha256 of (seed,
    round), not at the next integers: those are other requests' explicit seeds, and round two
    of ``--seed 3`` rendering seed 4 made a later ``--seed 4`` request a repeat of it, served
    from the cache at $0. Deterministic, so a resumed or repeated request plans the same
    seeds; the seeds actually used are on each attempt and receipt.
    """
    if iteration <= 1:
        return seed
    digest = hashlib.sha256(f"brandloop-round-seed:{seed}:{iteration}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _unseeded_base(state: RunState) -> int:
    digest = hashlib.sha256(state["run_id"].encode()).hexdigest()
    return int(digest[:8], 16)


def _recalled_seeds(state: RunState, iteration: int) -> list[int]:
    """The seeds memory recalls as accepted for a similar request, each once: round one of an
    unseeded request only. An explicit seed always wins, so two requests that differ only in
    their seed never share candidates (nor the cache's images)."""
    if iteration != 1 or state["request"].seed is not None:
        return []
    return list(dict.fromkeys(state.get("recalled_seeds", [])))


#: What decides the image a call returns but its seed: model, quality setting, prompt, negative
#: prompt and size. Two calls that agree on it and on the seed return the same bytes.
ImageCall = tuple[str, str | None, str, str, int, int]


def image_request(candidate: Candidate) -> tuple[ImageCall, int]:
    """The image request ``candidate`` makes: its call (see :data:`ImageCall`) and its seed."""
    quality = candidate.params.get("quality")
    call = (
        candidate.model,
        str(quality) if quality else None,
        candidate.prompt,
        candidate.negative_prompt,
        candidate.width,
        candidate.height,
    )
    return call, candidate.seed


def pick_seeds(
    calls: list[ImageCall],
    *,
    recalled: list[int],
    cursor: int,
    sent: set[tuple[ImageCall, int]],
) -> tuple[list[int], int, int]:
    """``(seeds, cursor, reused)``: a seed for each of ``calls``, the cursor after them and
    how many seeds came from memory.

    Each call takes the next remembered seed, else the cursor's next. A seed with which this
    run already sent the same call (``sent``), or another call of this round sends it, is
    passed over: the same request returns the same image, billed again and rejected as a
    duplicate. So no run pays twice for one image, whatever memory recalls."""
    pending = list(dict.fromkeys(recalled))
    seeds: list[int] = []
    reused = 0
    for call in calls:
        while True:
            remembered = bool(pending)
            if remembered:
                seed = pending.pop(0)
            else:
                seed, cursor = cursor % 2**32, cursor + 1
            if (call, seed) not in sent:
                break
        sent.add((call, seed))
        seeds.append(seed)
        reused += remembered
    return seeds, cursor, reused


def eligible_models(
    ctx: RunContext, state: RunState, latencies: dict[str, float | None]
) -> tuple[list[ModelSpec], list[str]]:
    """The models the diagnosis still allows, and notes on what was left out and why.

    Never a model the run excluded, nor one whose provider is missing or behind an open
    circuit breaker. A template's ``model_hints`` narrow the choice to the hinted models when
    any of them is usable. The diagnosis' floor (a soft model's tier) applies while something at or
    above it is usable; past that every usable model of any tier counts. Empty when no
    provider can be called: the planner then ends the run as providers unavailable.
    """
    floor = min(state.get("model_index", 0), len(ctx.models) - 1)
    excluded = set(state.get("excluded_models", []))
    notes: list[str] = []
    unreachable = unreachable_providers(ctx, state)
    down = sorted(
        {
            m.provider
            for m in ctx.models
            if m.provider not in ctx.providers
            or circuit_open(ctx.providers[m.provider])
            or m.provider in unreachable
        }
    )
    if down:
        notes.append(f"skipping unavailable provider(s): {', '.join(down)}")
    usable = [m for m in ctx.models if m.id not in excluded and m.provider not in down]
    hints = state["template"].model_hints
    hinted = [m for m in usable if m.id in hints]
    if hints and hinted and len(hinted) < len(usable):
        notes.append(f"template {state['template'].ref} hints {', '.join(m.id for m in hinted)}")
        usable = hinted
    models = [m for m in ctx.models[floor:] if m in usable] or usable
    target = ctx.policy.latency_target_s
    if target is not None:
        fast = [m for m in models if (latencies.get(m.id) or 0.0) <= target]
        slow = [m.id for m in models if m not in fast]
        if slow:
            notes.append(f"over the {target:g}s latency target: {', '.join(slow)}")
        models = fast or models
    return models, notes


def template_arms(
    template: TemplateVersion, models: list[ModelSpec], options: list[Arm], *, boost: int
) -> tuple[list[Arm], str]:
    """The arms a template's ``quality`` param leaves, and the plan's note on it ("": none).

    A template that sets a quality narrows the arms to that setting of the models that have
    it (whatever ``explore_quality`` says), as ``model_hints`` narrow the models; when no
    usable model has it, the arms stay as they were and the note says so. After a soft round
    the diagnosis' raise (``quality_boost``) wins over a setting below it: the raised
    settings are planned and the note says the template's was overridden.
    """
    wanted = template.params.get("quality")
    if not isinstance(wanted, str) or not wanted:
        return options, ""
    having = [m for m in models if wanted in m.qualities]
    if not having:
        return options, (
            f"template {template.ref} sets quality {wanted}, which no usable model has: "
            "planned without it"
        )
    if boost > 0:
        raised = [a for a in arms(having, min_boost=boost) if a.quality == wanted]
        if not raised:
            return options, (
                f"template {template.ref} sets quality {wanted}, overridden: the diagnosis "
                f"raised quality after {boost} soft round(s), to "
                + ", ".join(sorted({a.quality for a in options if a.quality}))
            )
        return raised, f"template {template.ref} sets quality {wanted}"
    return [Arm(m, wanted) for m in having], f"template {template.ref} sets quality {wanted}"


def call_params(template: TemplateVersion, arm: Arm, writer: dict[str, Any]) -> dict[str, Any]:
    """A candidate's params: the template's (its defaults, but ``quality``, which picks the
    arm) under the agent's own keys - the arm's quality setting, the LLM writer's identity.
    A field brandloop sets itself (``RESERVED_PARAMS``, refused in a new version, but a
    version stored by older code may hold one, in any case: ``Seed`` is ``seed`` to a provider
    that ignores case) is never taken from the template."""
    return {
        **{
            k: v
            for k, v in template.params.items()
            if k.lower() != "quality" and k.lower() not in RESERVED_PARAMS
        },
        **({"quality": arm.quality} if arm.quality else {}),
        **writer,
    }


def _replay(
    ctx: RunContext, state: RunState, known: set[str], notes: list[str]
) -> dict[str, Any] | None:
    """Round one of an identical request: the earlier run's accepted candidates, which the
    cache serves at $0 (memory does not get to change their prompts).

    Only while the cache still holds every one of them: an entry purged, deleted with its
    image (a takedown: ``artifact_owners.release_artifact``), or deleted because its model's
    catalog version changed, would be a provider call at full price, so the
    request is then planned afresh (within its budgets) and ``notes`` says why. Each replayed
    candidate carries its catalog price anyway, so an entry that goes between here and the
    generate node is reserved like any call before it is made."""
    key = state.get("request_key")
    if key is None:
        return None
    request = state["request"]
    with ctx.db.session() as session:
        found = earlier_accepted(session, tenant=ctx.tenant, key=key, run_id=state["run_id"])
        if found is None:
            return None
        earlier_run, rows = found
        if any(row.model not in known for row in rows):
            return None
        specs = {row.model: ctx.model(row.model) for row in rows}
        candidates = replay_candidates(rows[: request.count], run_id=state["run_id"], models=specs)
        gone = [
            c
            for c in candidates
            if not _cached(ctx, session, c, specs[c.model], request_seed=request.seed)
        ]
    if gone:
        notes.append(
            f"identical request to {earlier_run}, but {len(gone)} of its {len(candidates)} "
            "accepted image(s) are no longer in the generation cache (purged, deleted with its "
            "image, or the model's catalog version changed): planned afresh and paid for, not "
            "replayed"
        )
        return None
    decision = Decision(
        node="plan",
        action="replay_cache",
        reason=f"identical request to {earlier_run} (brief, brand kit, template version, seed, "
        f"size, count): replaying its {len(candidates)} accepted candidate(s) from the cache "
        "at $0",
        signals={"replayed": float(len(candidates))},
    )
    ctx.emit(state["run_id"], "plan", "decision", decision.model_dump(mode="json"))
    return {"candidates": candidates, "iteration": 1, "decisions": [decision]}


def _cached(
    ctx: RunContext,
    session: Session,
    candidate: Candidate,
    spec: ModelSpec,
    *,
    request_seed: int | None,
) -> bool:
    """Whether the generate node's cache step would serve ``candidate`` (its entry and image)."""
    entry = generation_cache.present(
        session,
        tenant=ctx.tenant,
        key=generation_cache.cache_key(
            spec, candidate, tenant=ctx.tenant, request_seed=request_seed
        ),
        spec=spec,
    )
    return entry is not None and ctx.artifacts.exists(entry.artifact_sha256)


def _stop(
    ctx: RunContext,
    state: RunState,
    iteration: int,
    reason: str,
    *,
    action: str = "stop_budget",
    cause: StopCause = "budget",
    signals: dict[str, float] | None = None,
) -> dict[str, Any]:
    decision = Decision(node="plan", action=action, reason=reason, signals=signals or {})
    ctx.emit(state["run_id"], "plan", "decision", decision.model_dump(mode="json"))
    return {
        "candidates": [],
        "iteration": iteration,
        "decisions": [decision],
        "reason": reason,
        "stop_cause": cause,
    }


def _outlook(
    ctx: RunContext,
    state: RunState,
    iteration: int,
    options: list[Arm],
    stats: dict[str, ArmStats],
    price: dict[str, float],
) -> Outlook:
    """The stopping rule's view of the next round on the best arm per dollar."""
    means = {}
    for arm in options:
        alpha, beta = posterior(arm, stats, ctx.policy.prior_strength)
        means[arm.key] = alpha / (alpha + beta)
    best = max(options, key=lambda a: means[a.key] / max(price[a.key], 1e-6))
    brand_id = state.get("brand_id")
    with ctx.db.session() as session:
        rates = fix_rates(session, tenant=ctx.tenant, brand_id=brand_id) if brand_id else []
        usual = (
            cost_per_accepted_image(session, tenant=ctx.tenant, brand_id=brand_id)
            if brand_id
            else None
        )
    multiple = ctx.policy.stop_cost_multiple
    if usual is not None:
        cap = multiple * usual
        source = (
            f"{multiple:g}× the brand's {usd(usual)} per accepted image over its latest (up to "
            f"{COST_WINDOW}) finished paid runs"
        )
    else:
        # no paid run of the brand accepted anything yet: the catalog's own claim is the bar
        ideal = min(price[a.key] / max(a.model.quality_baseline, 1e-6) for a in options)
        cap, source = multiple * ideal, f"{multiple:g}× the catalog's best {usd(ideal)}, no history"
    repairs = state.get("repairs", [])
    return outlook(
        model=best.key,
        posterior_mean=means[best.key],
        price=price[best.key],
        pending=[r for r in repairs if r["round"] == iteration - 1 and r["fixed"] is None],
        history=repairs,
        rates=rates,
        cap=cap,
        cap_source=source,
    )


def _writer_decision(
    ctx: RunContext,
    state: RunState,
    outcome: WriterOutcome,
    used: int,
    dropped: dict[str, int],
    identity: dict[str, str],
) -> Decision:
    """The trace's record of one writer call: which writer, how long it took and what came of
    it. A failure is named by its class only (its message may hold the raw answer or a key)."""
    took = f"{outcome.latency_ms:.0f} ms"
    who = f"LLM writer {identity['provider']}/{identity['model']}"
    if outcome.failure is not None:
        reason = (
            f"{who} failed ({outcome.failure}) after {took}: no variants, the composed "
            "prompts are used"
        )
    else:
        reason = f"{who} answered in {took}: {used} variant(s) used"
    if dropped:
        total = sum(dropped.values())
        reason += f"; {total} variant(s) dropped: " + ", ".join(
            f"{kind}" if n == total else f"{kind} ×{n}" for kind, n in sorted(dropped.items())
        )
    decision = Decision(
        node="plan",
        action="writer_failed" if outcome.failure is not None else "write_variants",
        reason=reason,
        signals={
            "latency_ms": outcome.latency_ms,
            "variants_used": float(used),
            "variants_dropped": float(sum(dropped.values())),
        },
    )
    ctx.emit(state["run_id"], "plan", "decision", decision.model_dump(mode="json"))
    return decision


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
        stats = (
            arm_stats(
                session,
                brand_id=brand_id,
                template_ref=template.ref,
                tenant=ctx.tenant,
                pool_strength=ctx.policy.pool_strength,
            )
            if brand_id
            else {}
        )
    if outside is not None and outside.remaining_usd < remaining:
        remaining, budget_label = outside.remaining_usd, outside.label
    models, notes = eligible_models(ctx, state, model_latencies(stats))
    if not models:
        return {
            **_stop(
                ctx,
                state,
                iteration,
                unavailable_reason(ctx, state),
                action="stop_providers_unavailable",
                cause="providers_unavailable",
            ),
            "status": "failed",
        }
    width, height = request.dimensions()
    options, quality_note = template_arms(
        template,
        models,
        arms(
            models,
            min_boost=state.get("quality_boost", 0),
            every_quality=ctx.policy.explore_quality,
        ),
        boost=state.get("quality_boost", 0),
    )
    if quality_note:
        notes.append(quality_note)
    price = {
        a.key: image_price(a.model, width=width, height=height, quality=a.quality) for a in options
    }
    affordable = [a for a in options if price[a.key] <= remaining + 1e-9]
    if not affordable:
        cheapest = min(options, key=lambda a: price[a.key])
        return _stop(
            ctx,
            state,
            iteration,
            f"remaining {budget_label} {usd(max(remaining, 0.0))} cannot pay for one "
            f"{cheapest.key} image ({usd(price[cheapest.key])})",
        )

    if iteration > 1:
        look = _outlook(ctx, state, iteration, affordable, stats, price)
        if look.unpromising:
            return _stop(
                ctx,
                state,
                iteration,
                "stopping: " + look.explain(),
                action="stop_unpromising",
                cause="unpromising",
                signals={
                    "p_accept": round(look.p_accept, 4),
                    "expected_cost_usd": round(look.expected_cost, 6),
                    "cap_usd": round(look.cap, 6),
                },
            )

    if iteration == 1 and ctx.use_cache and state.get("request_key"):
        replayed = _replay(ctx, state, {m.id for m in ctx.models}, notes)
        if replayed is not None:
            return replayed

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
    # A similar earlier request of the brand: start from the model that was accepted, not from
    # the cheapest tier (its seeds come first below), at the setting the bandit rates best.
    by_key = {a.key: a for a in affordable}
    ranked = [by_key[c.key] for c in choices]
    remembered = [
        next((a for a in ranked if a.model.id == mid), None)
        or next(a for a in affordable if a.model.id == mid)
        for mid in (state.get("recalled_models", []) if iteration == 1 else [])
        if any(a.model.id == mid for a in affordable)
    ]
    planned: list[Arm] = []
    left = remaining
    for index, arm in enumerate(ranked):
        if index < len(remembered):
            arm = remembered[index]
        if price[arm.key] > left + 1e-9:
            fits = [a for a in affordable if price[a.key] <= left + 1e-9]
            if not fits:
                break
            arm = max(fits, key=lambda a: (a.model.quality_baseline, -price[a.key]))
        planned.append(arm)
        left -= price[arm.key]
    explored = sum(1 for c in choices[: len(planned)] if c.explored)

    emphasis = state.get("emphasis", "normal")
    modifiers = state.get("modifiers", [])
    notes_for_prompt = list(state.get("style_notes", []))
    anchor = state.get("anchor_colours", [])
    if anchor:
        notes_for_prompt.append("campaign colours in this order: " + ", ".join(anchor))

    def build(brief: str, style_notes: list[str]) -> tuple[str, str]:
        return compose(
            template,
            brand=brand,
            brief=brief,
            modifiers=modifiers,
            style_notes=style_notes,
            emphasis=emphasis,
            avoid=[*request.avoid, *state.get("avoid_colours", [])],
            shifts=request.shifts,
            accents=state.get("accents", []),
            forbidden=state.get("avoid_colours", []),
        )

    limit = min([ctx.moderation.text.max_chars, *(arm.model.max_prompt_chars for arm in planned)])
    prompt, negative, fitted = fit_prompt(
        build,
        brief=request.brief,
        style_notes=notes_for_prompt,
        limit=limit,
        pinned=1 if anchor else 0,
    )
    fit_decisions: list[Decision] = []
    if fitted:
        fit_decision = Decision(
            node="plan",
            action="fit_prompt",
            reason=f"the rendered prompt was longer than {limit} characters (the tightest of "
            f"the moderation limit and the planned models' max_prompt_chars): {fitted}",
            signals={"limit_chars": limit, "prompt_chars": len(prompt)},
        )
        ctx.emit(state["run_id"], "plan", "decision", fit_decision.model_dump(mode="json"))
        fit_decisions.append(fit_decision)
    verdict = check_text(
        ctx,
        state["run_id"],
        prompt,
        node="plan",
        source="prompt",
        forbidden_terms=brand.forbidden_terms,
    )
    if not verdict.allowed:
        decision = Decision(
            node="plan",
            action="refuse_prompt",
            reason="rendered prompt failed moderation before any paid call: " + explain(verdict),
        )
        ctx.emit(state["run_id"], "plan", "decision", decision.model_dump(mode="json"))
        return {
            "candidates": [],
            "iteration": iteration,
            "status": "refused",
            "reason": decision.reason,
            "decisions": [*fit_decisions, decision],
        }
    prompts = [prompt] * len(planned)
    written = 0
    writer_params: dict[str, Any] = {}
    writer_decisions: list[Decision] = []
    if ctx.writer is not None and iteration == 1 and planned:
        outcome = await ctx.writer.write(
            base_prompt=prompt,
            brief=request.brief,
            brand=brand.name,
            n=len(planned),
            forbidden_terms=brand.forbidden_terms,
            secrets=ctx.secrets,
            # the palette clause's colours, as the base prompt names them
            keep=[c.hex for c in brand.palette if c.hex.casefold() in prompt.casefold()],
        )
        for held in outcome.held:  # dropped already; moderated for the trace and the audit
            check_text(
                ctx,
                state["run_id"],
                held,
                node="plan",
                source="variant",
                forbidden_terms=brand.forbidden_terms,
            )
        safe = [
            v
            for v in outcome.variants
            if check_text(
                ctx,
                state["run_id"],
                v,
                node="plan",
                source="variant",
                forbidden_terms=brand.forbidden_terms,
            ).allowed
        ]
        for index, variant in enumerate(safe[: len(planned)]):
            prompts[index] = variant
            written += 1
        writer_params = {"writer": dict(ctx.writer.identity)}
        dropped = dict(outcome.dropped)
        if len(outcome.variants) > len(safe):
            dropped["moderation"] = dropped.get("moderation", 0) + len(outcome.variants) - len(safe)
        writer_decisions.append(
            _writer_decision(ctx, state, outcome, written, dropped, ctx.writer.identity)
        )

    count = len(planned)
    if request.seed is not None:  # the request's own seeds, round by round (see round_seed)
        cursor = round_seed(request.seed, iteration)
    else:  # the run's seeds, after the remembered ones, continuing from round to round
        cursor = state.get("seed_cursor", _unseeded_base(state))

    # never an image request this run sent already, nor one twice in this round
    sent = {image_request(a.candidate) for a in state.get("attempts", {}).values()}
    seeds, cursor, reused = pick_seeds(
        [
            (arm.model.id, arm.quality or None, prompts[index], negative, width, height)
            for index, arm in enumerate(planned)
        ],
        recalled=_recalled_seeds(state, iteration),
        cursor=cursor,
        sent=sent,
    )
    candidates = [
        Candidate(
            id=f"{state['run_id']}-i{iteration}-c{index}",
            template=template.ref,
            prompt=prompts[index],
            negative_prompt=negative,
            model=arm.model.id,
            seed=seed,
            width=width,
            height=height,
            iteration=iteration,
            estimated_cost_usd=price[arm.key],
            params=call_params(template, arm, writer_params if index < written else {}),
            modifiers=list(modifiers),
        )
        for index, (arm, seed) in enumerate(zip(planned, seeds, strict=True))
    ]
    by_arm: dict[str, int] = {}
    for arm in planned:
        by_arm[arm.key] = by_arm.get(arm.key, 0) + 1
    spread = ", ".join(f"{n}× {key}" for key, n in by_arm.items())
    cost = sum(price[arm.key] for arm in planned)
    short = " (budget allows only these)" if count < needed else ""
    reason = (
        f"round {iteration}: {spread} ({usd(cost)}, {budget_label} left {usd(remaining)}){short}; "
        f"bandit over {', '.join(a.key for a in affordable)}, {explored} exploring; "
        f"palette emphasis {emphasis}"
        + (f"; modifiers: {', '.join(modifiers)}" if modifiers else "")
        + (f"; reusing {reused} remembered seed(s)" if reused else "")
        + (f"; {written} LLM-written variant(s)" if written else "")
        + (f"; {'; '.join(notes)}" if notes else "")
    )
    signals = {f"p_accept[{c.key}]": round(c.posterior_mean, 4) for c in choices}
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
        "seed_cursor": cursor,
        "decisions": [*fit_decisions, *writer_decisions, decision],
    }
