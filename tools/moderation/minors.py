"""The absolute line: sexual content involving minors, checked at every entry point and audited.

:func:`minors_line` runs only what decides ``sexual/minors`` (the lexical minors rule and the
semantic classifier's minors rule, with the lexicon's own senses and the calibrated
thresholds), so no brand policy, threshold or role can move it. Entry points: the brief at
intake, every rendered prompt and LLM-written variant in plan, a template's text when it is
created or versioned, a style note when it is added (``api/style_notes.py``, with the
brand's whole text gate), and, at the door (:func:`refuse_at_the_door`, before a job, a run, a
quota hold or anything else is stored), every brief a generation, a campaign asset or a thread
message brings and the prompt its run will render from it. Each refusal there is written to
the audit log (:func:`audit_detail`): the source, the layers, spans, rules and scores, and a
digest of the normalised text; never the text itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Final

from sqlalchemy.orm import Session

from brandloop.domain import ModerationVerdict
from brandloop.errors import RefusedError
from brandloop.registry import crud
from brandloop.tools.moderation.categories import SEXUAL_MINORS
from brandloop.tools.moderation.lexical import normalised_text

AUDIT_ACTION: Final = "moderation.refused.sexual_minors"
#: The audit log's actor for refusals the agent makes on its own (no person asked).
AGENT_ACTOR: Final = "brandloop-moderation"


def minors_line(text: str, *, source: str = "text") -> ModerationVerdict:
    """The ``sexual/minors`` findings for ``text`` and nothing else; allowed when none."""
    from brandloop.tools.moderation.text import moderate_text  # text imports the layers

    verdict = moderate_text(text, source=source, profanity_threshold=None)
    return only_minors(verdict)


def only_minors(verdict: ModerationVerdict) -> ModerationVerdict:
    """``verdict`` narrowed to the minors line (a gate's verdict already holds its findings)."""
    findings = [f for f in verdict.findings if f.category == SEXUAL_MINORS]
    return ModerationVerdict(
        allowed=not findings,
        source=verdict.source,
        categories=[SEXUAL_MINORS] if findings else [],
        reasons=[r for r in verdict.reasons if r.startswith(SEXUAL_MINORS + ":")],
        scores={k: v for k, v in verdict.scores.items() if SEXUAL_MINORS in k},
        findings=findings,
    )


def crosses_the_line(verdict: ModerationVerdict) -> bool:
    return SEXUAL_MINORS in verdict.categories


def audit_detail(verdict: ModerationVerdict, text: str) -> dict[str, Any]:
    """What the audit log keeps of a refusal: never the text, nor a quoted span of it."""
    return {
        "source": verdict.source,
        "categories": verdict.categories,
        "findings": [
            f.model_dump(mode="json", exclude={"excerpt"})
            for f in verdict.findings
            if f.category == SEXUAL_MINORS
        ],
        "normalised_sha256": hashlib.sha256(normalised_text(text).encode()).hexdigest(),
    }


def audit_refusal(
    session: Session,
    *,
    tenant: str,
    actor: str,
    subject_type: str,
    subject_id: str,
    verdict: ModerationVerdict,
    text: str,
) -> None:
    """Add the audit entry for a ``sexual/minors`` refusal to ``session`` (the caller commits)."""
    crud.audit(
        session,
        tenant=tenant,
        actor=actor,
        action=AUDIT_ACTION,
        subject_type=subject_type,
        subject_id=subject_id,
        detail=audit_detail(verdict, text),
    )


def template_screen(text: str) -> ModerationVerdict:
    """The screen a template's body and description pass before they are stored
    (``brandloop.templates.governance.TemplateScreen``): the minors line."""
    return minors_line(text, source="template")


@lru_cache(maxsize=2048)
def _door_verdict(text: str) -> ModerationVerdict:
    """:func:`minors_line`, remembered: a door sees the same briefs and renders again and again
    (a client's retries, a campaign's formats, a thread's brief checked as a revision and again
    as its job is submitted), and the classifier costs tens of milliseconds a text. The
    verdict depends on the text alone (the source only labels it); callers only read it."""
    return minors_line(text)


def refuse_at_the_door(
    session: Session,
    *,
    tenant: str,
    actor: str,
    subject_type: str,
    subject_id: str,
    texts: Sequence[tuple[str, str]],
) -> None:
    """A :class:`RefusedError` (HTTP 422 ``refused``, CLI exit 3) when one of ``texts``
    (``(source, text)`` pairs: the brief, the prompt its run will render) crosses the minors
    line, with the refusal on the audit record, committed in a transaction of its own (the
    caller's rolls back with the refusal). Called before the caller stores anything: no job,
    run, quota hold or idempotency answer is kept for a refused request."""
    for source, text in texts:
        verdict = _door_verdict(text)
        if verdict.allowed:
            continue
        verdict = verdict.model_copy(update={"source": source})
        crud.audit_committed(
            session,
            tenant=tenant,
            actor=actor,
            action=AUDIT_ACTION,
            subject_type=subject_type,
            subject_id=subject_id,
            detail=audit_detail(verdict, text),
        )
        raise RefusedError("refused by moderation: " + "; ".join(verdict.reasons))
