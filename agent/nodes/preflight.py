"""preflight: before any money is spent, compare the brief with the brand kit; the brand's
policy decides what a conflict leads to, and the choice is a recorded decision.

- ``adapt`` (default): the brand palette stays dominant, the brief's off-palette colours become
  accents (their share is capped by the run's acceptance rule), forbidden colours are taken
  out of the prompt (the palette leads in their place) and go to the negative prompt, an odd
  format is kept as asked;
- ``ask``: no spending; the run ends with a clarifying question (a thread shows it as the reply);
  a request carrying the thread's reply that took the question's offer (``answer``,
  ``brandloop.agent.clarification``) adapts instead, and the decision names that reply;
- ``refuse``: the run is refused with the conflict as its reason.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from brandloop.agent.clarification import question
from brandloop.agent.conflicts import find_conflicts
from brandloop.agent.context import RunContext
from brandloop.agent.state import RunState
from brandloop.domain import Decision


async def preflight(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    brand = state["brand"]
    request = state["request"]
    width, height = request.dimensions()
    conflicts = find_conflicts(request.brief, brand, width=width, height=height)
    choice = ctx.brand_policy.conflicts
    update: dict[str, Any] = {}
    if not conflicts:
        decision = Decision(
            node="preflight", action="no_conflict", reason="the brief fits the brand kit"
        )
    elif choice == "refuse":
        reason = f"refused before spending (brand policy: refuse): {conflicts.describe(brand)}"
        decision = Decision(node="preflight", action="refuse_conflict", reason=reason)
        update = {"status": "refused", "reason": reason}
    elif choice == "ask" and request.answer is None:
        asked = question(conflicts, brand, size=f"{width}x{height}")
        decision = Decision(node="preflight", action="ask", reason=asked)
        update = {"status": "refused", "reason": asked, "clarification": asked}
    else:
        share = ctx.brand_policy.accent_max_share
        parts = [conflicts.describe(brand)]
        if choice == "ask":
            parts.insert(0, f"asked, and the thread answered {request.answer!r}")
        if conflicts.off_palette:
            parts.append(
                f"adapting: the {brand.name} palette stays dominant and "
                f"{', '.join(c.label for c in conflicts.off_palette)} become accents; "
                f"acceptance for this run: those accents may cover at most {share:.0%}"
            )
        if conflicts.forbidden:
            limit = ctx.scoring.palette.forbidden_max_coverage
            parts.append(
                f"adapting: {', '.join(c.label for c in conflicts.forbidden)} taken out of "
                f"the prompt, which leads with the {brand.name} palette, and put in the "
                f"negative prompt; acceptance for this run: a forbidden colour may cover at "
                f"most {limit:.0%}"
            )
        if conflicts.format:
            parts.append("the requested size is kept as asked")
        decision = Decision(
            node="preflight",
            action="adapt",
            reason="; ".join(parts),
            signals={c.label: round(c.delta_e, 1) for c in conflicts.off_palette},
        )
        update = {
            "accents": [c.label for c in conflicts.off_palette],
            "accent_hexes": [c.hex for c in conflicts.off_palette],
            "avoid_colours": [c.label for c in conflicts.forbidden],
        }
    ctx.emit(state["run_id"], "preflight", "decision", decision.model_dump(mode="json"))
    return {**update, "decisions": [decision]}
