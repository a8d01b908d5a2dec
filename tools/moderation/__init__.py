"""Our own moderation checks, run before and after paying a provider: text (blocklist, brand
terms, a shipped profanity model), images (NudeNet), PII redaction and prompt injection."""

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
from brandloop.tools.moderation.text import Blocklist, load_blocklist, moderate_text

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
    "detect_injection",
    "find_pii",
    "load_blocklist",
    "load_moderation_policy",
    "moderate_text",
    "normalize_for_matching",
    "parse_writer_output",
    "provider_refusal",
    "redact",
    "spotlight",
]
