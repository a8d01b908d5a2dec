"""The absolute line: sexual content involving minors, checked at every entry point and audited.

:func:`minors_line` runs only what decides ``sexual/minors`` (the lexical minors rule and the
semantic classifier's minors rule, with the lexicon's own senses and the calibrated
thresholds), so no brand policy, threshold or role can move it. Entry points: the brief at
intake, every rendered prompt and LLM-written variant in plan, a template's text when it is
created or versioned, a style note when it is added (``api/style_notes.py``, with the
brand's whole text gate), and a thread revision at the messages endpoint. Each refusal there is
written to the audit log by :func:`audit_refusal`: the source, the layers, spans, rules and
scores, and a digest of the normalised text; never the text itself.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from sqlalchemy.orm import Session

from brandloop.domain import ModerationVerdict
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
