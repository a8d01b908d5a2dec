"""Key-shaped tokens: text that looks like another service's API key or access token.

A brief, or a provider's answer, can carry a key nobody configured here (pasted from a
notebook, echoed by a backend), which brandloop cannot recognise by its value. What it can
recognise is the shape the well-known services give their keys: ``sk-``/``pk-``/``rk-``
prefixed secrets (OpenAI, Anthropic, Stripe), AWS access key ids (``AKIA…``/``ASIA…``),
GitHub tokens (``ghp_…``, ``github_pat_…``), Slack tokens (``xoxb-…``) and Google API keys
(``AIza…``), JSON web tokens (``eyJ….eyJ….…``), a ``Bearer`` token, and a credential
written as an assignment (``password=…``, ``api_key: …``: its value). :data:`KEY_SHAPED` is every text a provider returns redacted by
(``tools/providers/_http.py``); :func:`redact_keys` is what a brief is redacted by at intake,
the same shapes, a generic prefix (``sk-``, ``key-``, ...) held to one more condition
(:func:`_random_looking`), since a brief is a person's words and
``key-visual-for-the-spring-campaign`` is one; a service's own prefix (``AKIA``, ``ghp_``)
is evidence enough.
"""

from __future__ import annotations

import re
from typing import Final

KEY_SHAPED: Final = re.compile(
    r"(?P<generic>\b(?:sk|pk|rk|key|sess)[-_][A-Za-z0-9_\-]{8,})"  # OpenAI, Stripe, ...
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # an AWS access key id
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}\b"  # GitHub: classic, OAuth, user, server, refresh
    r"|\bgithub_pat_[A-Za-z0-9_]{22,}"  # GitHub: fine-grained
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|\bAIza[0-9A-Za-z_\-]{35}"  # Google
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"  # a JSON web token
    r"|(?P<bearer>\b[Bb]earer\s+[A-Za-z0-9._~+/=\-]{16,})"  # an Authorization header's token
    # a credential written as an assignment ("password=...", "api_key: ..."): its value
    # (the label may end a longer name: DB_PASSWORD=, OPENAI_API_KEY=, aws_secret_access_key=)
    r"|(?P<label>\b[A-Za-z0-9_.-]*?(?i:password|passwd|pwd|passphrase|secret|"
    r"client[_-]?secret|api[_-]?key|access[_-]?key|access[_-]?token|auth[_-]?token|token)"
    r"\s*[:=]\s*)(?P<value>[^\s,;]{6,})"
)
#: what takes a key-shaped token's place in a brief, as ``[redacted email]`` takes an address's
KEY_MARKER: Final = "[redacted key]"
#: an assignment's label that makes its value a credential whatever it looks like
_PASSWORD: Final = re.compile(
    r"(?i:password|passwd|pwd|passphrase|client[_-]?secret|api[_-]?key|access[_-]?key|"
    r"access[_-]?token|auth[_-]?token)\s*[:=]"
)
#: a generated secret's body: this many letters and digits in a row, both kinds among them
_RANDOM_RUN: Final = re.compile(r"[A-Za-z0-9]{16,}")


def redact_key_shaped(text: str, marker: str) -> str:
    """``text`` with every key-shaped token replaced by ``marker``, an assignment's label
    kept (``api_key=[redacted]``): what a provider's text is redacted by, where a prefix
    alone is evidence enough."""

    def replace(match: re.Match[str]) -> str:
        label = match.group("label")
        if not label:
            return marker
        value = match.group("value")
        return match.group() if value.startswith(marker) else label + marker

    return KEY_SHAPED.sub(replace, text)


def _random_looking(token: str) -> bool:
    """Whether ``token`` holds a run of 16 or more letters and digits mixing both, as a
    generated secret does and hyphenated words (``key-lime-pie-latte``) never do."""
    return any(
        any(c.isdigit() for c in run) and any(c.isalpha() for c in run)
        for run in _RANDOM_RUN.findall(token)
    )


def redact_keys(text: str) -> tuple[str, int]:
    """``text`` with each key-shaped token (one with a generic prefix only if it looks
    random) replaced by :data:`KEY_MARKER`, and how many were; unchanged (the same string)
    when it holds none."""
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        if (match.group("generic") or match.group("bearer")) and not _random_looking(match.group()):
            return match.group()
        count += 1
        if match.group("label"):  # "password=[redacted key]": what it was stays readable
            if not _PASSWORD.search(match.group("label")) and not _random_looking(
                match.group("value")
            ):  # "our secret: fresh beans" is a brief's words
                count -= 1
                return match.group()
            return match.group("label") + KEY_MARKER
        return KEY_MARKER

    redacted = KEY_SHAPED.sub(replace, text)
    return (redacted, count) if count else (text, 0)
