"""Our own moderation checks, run before and after paying a provider."""

from tools.moderation.normalize import normalize_for_matching
from tools.moderation.text import Blocklist, load_blocklist, moderate_text

__all__ = ["Blocklist", "load_blocklist", "moderate_text", "normalize_for_matching"]
