"""Our own moderation checks, run before and after paying a provider: text (lexical layer with
look-alike senses, the minors line, brand terms, a semantic classifier, a shipped profanity
model), images (NudeNet), PII redaction and prompt injection."""

from brandloop.tools.moderation.explain import describe, explain
from brandloop.tools.moderation.image import (
    Detection,
    NudeNetDetector,
    NudeNetModerator,
    provider_refusal,
)
from brandloop.tools.moderation.injection import (
    Fenced,
    InjectionReport,
    detect_injection,
    parse_writer_output,
    spotlight,
)
from brandloop.tools.moderation.normalize import normalize_for_matching
from brandloop.tools.moderation.pii import PiiFinding, Redaction, find_pii, redact
from brandloop.tools.moderation.policy import ModerationPolicy, load_moderation_policy
from brandloop.tools.moderation.text import (
    Blocklist,
    load_blocklist,
    moderate_text,
    moderate_with_policy,
)

__all__ = [
    "Blocklist",
    "Detection",
    "Fenced",
    "InjectionReport",
    "ModerationPolicy",
    "NudeNetDetector",
    "NudeNetModerator",
    "PiiFinding",
    "Redaction",
    "describe",
    "detect_injection",
    "explain",
    "find_pii",
    "load_blocklist",
    "load_moderation_policy",
    "moderate_text",
    "moderate_with_policy",
    "normalize_for_matching",
    "parse_writer_output",
    "provider_refusal",
    "redact",
    "spotlight",
]
