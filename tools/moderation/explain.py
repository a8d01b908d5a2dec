"""One-line explanations of moderation findings, for the CLI, run decisions and audit notes.

They quote only what a finding holds: the layer, the category, the span of the normalised
(PII-redacted) text and the listed term or classifier score; never the raw input.
"""

from __future__ import annotations

from brandloop.domain import ModerationFinding, ModerationVerdict


def describe(finding: ModerationFinding) -> str:
    """``sexual by the lexical layer on [2:6] "nude" (term 'nude')``."""
    parts = [f"{finding.category} by the {finding.layer} layer"]
    if finding.start is not None and finding.end is not None:
        span = f"on [{finding.start}:{finding.end}]"
        if finding.excerpt is not None:
            span += f' "{finding.excerpt}"'
        parts.append(span)
    detail = finding.rule
    if finding.score is not None:
        detail = f"{detail}, score {finding.score:.2f}" if detail else f"score {finding.score:.2f}"
    if detail:
        parts.append(f"({detail})")
    return " ".join(parts)


def explain(verdict: ModerationVerdict) -> str:
    """Every finding of ``verdict``, one clause each; empty when it is allowed."""
    return "; ".join(describe(f) for f in verdict.findings)
