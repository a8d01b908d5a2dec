"""intake: load the brand and template; redact PII and key-shaped tokens from the brief, look
for prompt injection and moderate it. A refusal goes straight to finalize.

The runner already stores the redacted brief (see :func:`redacted_request`); intake redacts
again so a graph driven directly (API, evals) never carries PII either, and records which
kinds were redacted (never the values) for the receipt.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from langgraph.runtime import Runtime

from brandloop.agent.context import RunContext
from brandloop.agent.moderation import check_hosted, check_text
from brandloop.agent.replay import mark, request_key
from brandloop.agent.state import RunState
from brandloop.agent.templates import resolve_template
from brandloop.domain import MAX_BRIEF_CHARS, Decision, GenerationRequest
from brandloop.errors import BadInputError, NotFoundError
from brandloop.registry import crud
from brandloop.tools.moderation.explain import explain
from brandloop.tools.moderation.injection import detect_injection
from brandloop.tools.moderation.keys import KEY_MARKER, redact_keys
from brandloop.tools.moderation.pii import PiiKind, redact, redaction_markers
from brandloop.tools.moderation.policy import default_moderation_policy


def redacted_text(text: str) -> str:
    """``text`` with the PII the default moderation policy redacts, and every key-shaped
    token, replaced by ``[redacted <kind>]`` markers (unchanged when it holds none).

    The API calls it on every brief and thread message before anything is stored (jobs,
    thread messages, campaign plans), so the service never keeps the values either.
    """
    return _redacted(text, tuple(default_moderation_policy().pii.redact))[0]


def _redacted(text: str, kinds: tuple[PiiKind, ...]) -> tuple[str, list[str]]:
    """``text`` with its key-shaped tokens (``[redacted key]``: another service's API key
    pasted into a brief would otherwise be stored, sent to the provider and signed into the
    receipt; ``tools/moderation/keys.py``) and then its PII of ``kinds`` redacted, and the
    kind of each marker it now holds - those already there too (the runner redacted the brief
    before intake sees it). Keys go first: a PII pattern must not take a piece of one (a run
    of its digits) and leave the rest of it in the text."""
    keyless, _ = redact_keys(text)
    clean = redact(keyless, kinds).text
    markers = redaction_markers(clean) + ["key"] * clean.count(KEY_MARKER)
    return clean, markers


def redacted_brief(text: str, *, what: str = "brief") -> str:
    """:func:`redacted_text` of a brief, refused (:class:`BadInputError`) when its markers take
    it past :data:`MAX_BRIEF_CHARS`: a marker (``[redacted email]``) can be longer than what it
    replaces, and a brief over the limit could be neither run nor resumed."""
    clean = redacted_text(text)
    if len(clean) > MAX_BRIEF_CHARS:
        raise BadInputError(
            f"{what} is {len(clean)} characters once its personal data is replaced by "
            f"[redacted <kind>] markers; the limit is {MAX_BRIEF_CHARS}"
        )
    return clean


def redacted_request(request: GenerationRequest) -> GenerationRequest:
    """The request with PII in its brief replaced by ``[redacted <kind>]`` markers
    (:func:`redacted_brief`: refused when that takes it past the limit).

    Called by the runner before the run row is written, so neither the runs table, the
    checkpoints, the trace, memory nor any provider ever sees the values.
    """
    brief = redacted_brief(request.brief)
    if brief == request.brief:
        return request
    return request.model_copy(update={"brief": brief})


def _summary(kinds: list[str]) -> list[str]:
    counts = Counter(kinds)
    return [kind if n == 1 else f"{kind} x{n}" for kind, n in sorted(counts.items())]


async def intake(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    run_id = state["run_id"]
    request = state["request"]
    policy = ctx.moderation
    with ctx.db.session() as session:
        # by the id the run was bound to, never its name again: renamed since, the name may
        # be another brand's now
        brand_row = crud.request_brand(session, request)
        if brand_row is None:  # the runner checked it; it was removed since
            raise NotFoundError(f"brand {request.brand!r} was removed while the run started")
        brand = crud.brand_kit(brand_row)
        template = resolve_template(
            session, tenant=ctx.tenant, ref=request.template, request_id=run_id
        )

    decisions: list[Decision] = []
    if request.past_limit():
        width, height = request.dimensions()
        asked = f"size {request.size}" if request.size else f"aspect ratio {request.aspect_ratio}"
        decisions.append(
            Decision(
                node="intake",
                action="adapt_aspect",
                reason=f"{asked} is past 4:1, the most elongated shape brandloop asks of a "
                f"model: made at {width}x{height}",
            )
        )
    brief, markers = _redacted(request.brief, tuple(policy.pii.redact))
    redactions = _summary(markers)
    if brief != request.brief:
        request = request.model_copy(update={"brief": brief})
    if redactions:
        decisions.append(
            Decision(
                node="intake",
                action="redact_pii",
                reason="personal data and key-shaped tokens redacted from the brief before it "
                "was stored or sent: " + ", ".join(redactions),
            )
        )
    injection = detect_injection(request.brief)
    refusal = ""
    if injection.detected:
        patterns = ", ".join(injection.patterns)
        if policy.injection.action == "refuse":
            refusal = f"brief refused: it reads as prompt injection ({patterns})"
        else:
            decisions.append(
                Decision(
                    node="intake",
                    action="flag_injection",
                    reason=f"the brief contains prompt-injection patterns ({patterns}); it is "
                    "used only as data and fenced wherever it reaches a language model",
                )
            )
    verdict = check_text(
        ctx,
        run_id,
        request.brief,
        node="intake",
        source="brief",
        forbidden_terms=brand.forbidden_terms,
    )
    if not verdict.allowed:
        refusal = "brief refused by text moderation: " + explain(verdict)
    else:
        hosted, note = await check_hosted(
            ctx, run_id, node="intake", source="brief", text=request.brief
        )
        if note is not None:
            decisions.append(
                Decision(node="intake", action="hosted_moderation_unavailable", reason=note)
            )
        if hosted is not None and not hosted.allowed:
            refusal = "brief refused by hosted moderation: " + (
                explain(hosted) or "; ".join(hosted.reasons)
            )
    key = request_key(request, brand_id=brand_row.id, brand=brand, template=template)
    with ctx.db.session() as session:
        mark(session, run_id=run_id, key=key)
        # on the run row before any call: a run cancelled or crashed mid-call keeps it
        crud.record_run_template(session, run_id=run_id, template_ref=template.ref)
    common: dict[str, Any] = {
        "request_key": key,
        "request": request,
        "brand": brand,
        "brand_id": brand_row.id,
        "template": template,
        "redactions": redactions,
    }
    if refusal:
        decisions.append(Decision(node="intake", action="refuse", reason=refusal))
        for decision in decisions:
            ctx.emit(run_id, "intake", "decision", decision.model_dump(mode="json"))
        return {**common, "status": "refused", "reason": refusal, "decisions": decisions}
    decisions.append(
        Decision(
            node="intake",
            action="accept_brief",
            reason=f"brief passed moderation; brand {brand.name}, template {template.ref}",
        )
    )
    for decision in decisions:
        ctx.emit(run_id, "intake", "decision", decision.model_dump(mode="json"))
    return {
        **common,
        "emphasis": "normal",
        "modifiers": [],
        "model_index": 0,
        "iteration": 0,
        "spent_usd": 0.0,
        "accepted": [],
        "attempts": {},
        "status": "running",
        "decisions": decisions,
    }
