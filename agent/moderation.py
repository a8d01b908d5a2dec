"""Text moderation inside a run: every offline layer with the brand's moderation policy, and
the audit entry when the minors line is crossed. intake (the brief) and plan (each rendered
prompt and LLM-written variant) call :func:`check_text`."""

from __future__ import annotations

from collections.abc import Sequence

from brandloop.agent.context import RunContext
from brandloop.domain import ModerationVerdict
from brandloop.tools.moderation.minors import AGENT_ACTOR, audit_refusal, crosses_the_line
from brandloop.tools.moderation.text import moderate_with_policy


def check_text(
    ctx: RunContext,
    run_id: str,
    text: str,
    *,
    node: str,
    source: str,
    forbidden_terms: Sequence[str] = (),
) -> ModerationVerdict:
    """The text gate's verdict on ``text``; a refusal is traced (findings, no raw text) and a
    ``sexual/minors`` one is also written to the audit log."""
    verdict = moderate_with_policy(
        text, ctx.moderation, forbidden_terms=forbidden_terms, source=source
    )
    if not verdict.allowed:
        ctx.emit(run_id, node, "moderation", verdict.model_dump(mode="json"))
    if crosses_the_line(verdict):
        with ctx.db.session() as session:
            audit_refusal(
                session,
                tenant=ctx.tenant,
                actor=AGENT_ACTOR,
                subject_type="run",
                subject_id=run_id,
                verdict=verdict,
                text=text,
            )
    return verdict
