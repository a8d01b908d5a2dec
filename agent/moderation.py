"""Moderation inside a run: every offline layer with the brand's moderation policy, the hosted
service in addition when one is configured, and the audit entry when the minors line is
crossed. intake (the brief) and plan (each rendered prompt and LLM-written variant) call
:func:`check_text`; intake and the moderate node (images) call :func:`check_hosted`."""

from __future__ import annotations

from collections.abc import Sequence

from brandloop.agent.context import RunContext
from brandloop.domain import ModerationVerdict
from brandloop.tools.moderation.hosted import ask
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
    _record(ctx, run_id, node, verdict, text)
    return verdict


def _record(ctx: RunContext, run_id: str, node: str, verdict: ModerationVerdict, text: str) -> None:
    """Trace a refusal (its findings, never the raw text); audit a ``sexual/minors`` one."""
    if verdict.allowed:
        return
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


async def check_hosted(
    ctx: RunContext,
    run_id: str,
    *,
    node: str,
    source: str,
    text: str | None = None,
    images: Sequence[bytes] = (),
) -> tuple[ModerationVerdict | None, str | None]:
    """The hosted service's verdict (None when none is configured, or when it could not answer
    and the brand's policy says continue), and a note when it could not answer. A refusal is
    traced, and a ``sexual/minors`` one audited, like an offline one."""
    if ctx.hosted_moderator is None:
        return None, None
    verdict, note = await ask(
        ctx.hosted_moderator, ctx.moderation.hosted, source=source, text=text, images=images
    )
    if verdict is not None:
        _record(ctx, run_id, node, verdict, text or "")
    return verdict, note
