"""PII in briefs: find and redact e-mail addresses, phone numbers, card numbers, IBANs and
street addresses before a brief is stored, logged, embedded into memory or sent anywhere.

Detection runs on the text with invisible characters removed and NFKC applied (so full-width
digits and zero-width splits do not hide a number). Card numbers must pass the Luhn check and
IBANs the ISO 13616 mod-97 check, which keeps order numbers, prices and dates from being taken
for them. A finding records the kind and where it was, never the value.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Final, Literal

PiiKind = Literal["email", "phone", "card", "iban", "address"]
ALL_KINDS: Final[tuple[PiiKind, ...]] = ("email", "card", "iban", "phone", "address")

_INVISIBLE: Final = re.compile("[\u00ad\u180e\u200b-\u200f\u2060\ufeff\u202a-\u202e\u2066-\u2069]")

_EMAIL: Final = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}"
    r"\s*(?:@|\(at\)|\[at\]|\{at\})\s*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\s*(?:\.|\(dot\)|\[dot\]|\{dot\})\s*[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*"
    r"\s*(?:\.|\(dot\)|\[dot\]|\{dot\})\s*[A-Za-z]{2,24}(?![\w-])",
    re.IGNORECASE,
)
#: 13-19 digits, optionally in groups separated by one space or hyphen.
_CARD: Final = re.compile(r"(?<![\w.,])\d(?:[ -]?\d){12,18}(?![\w.,]\d|\w)")
#: Two letters, two check digits, then 11-30 letters or digits, optionally grouped by spaces.
_IBAN: Final = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]){11,30}(?![A-Za-z0-9])"
)
#: International (+CC / 00CC) or national numbers with separators; 9-15 digits in all.
_PHONE: Final = re.compile(
    r"(?<![\w+])(?:"
    r"(?:\+|00)\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}"
    r"|\(\d{2,5}\)[\s.-]?\d{3,4}[\s.-]?\d{3,4}"
    r"|0\d{2,4}[\s.-]?\d{3,4}[\s.-]?\d{3,4}"
    r"|\d{3}[\s.-]\d{3}[\s.-]\d{4}"
    r")(?![\w])"
)
_STREET_WORDS: Final = (
    "street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|way|"
    "terrace|square|sq|parkway|pkwy|highway|hwy|crescent|close|gardens|row|mews"
)
_ADDRESS: Final = re.compile(
    # 221B Baker Street, 1600 Pennsylvania Avenue NW, 10 Downing St.
    rf"(?<![\w-])\d{{1,5}}[A-Za-z]?,?\s+(?:[A-Z][A-Za-z'’-]+\.?\s+){{1,4}}(?i:{_STREET_WORDS})\b\.?"
    r"(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?"
    r"(?:,?\s+(?i:apt|apartment|suite|unit|flat|#)\.?\s*[\w-]{1,6})?"
    # Hauptstraße 5, Bahnhofstr. 12a, Rue de la Paix 3 is left out (no reliable shape)
    r"|(?<![\w-])[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|str\.|weg|gasse|platz|allee)\s+\d{1,4}[a-z]?(?![\w])"
    r"|\b(?i:P\.?\s?O\.?\s+Box|Postfach)\s+\d{1,6}\b"
)


@dataclass(frozen=True)
class PiiFinding:
    """One piece of PII: its kind and its span in the *cleaned* text; never its value."""

    kind: PiiKind
    start: int
    end: int


@dataclass(frozen=True)
class Redaction:
    """A text with its PII replaced by ``[redacted <kind>]`` markers."""

    text: str
    findings: tuple[PiiFinding, ...]

    @property
    def redacted(self) -> bool:
        return bool(self.findings)

    def summary(self) -> list[str]:
        """``["email", "phone x2"]``: what was redacted, to record in receipts and traces."""
        counts = Counter(f.kind for f in self.findings)
        return [kind if n == 1 else f"{kind} x{n}" for kind, n in sorted(counts.items())]


def marker(kind: PiiKind) -> str:
    return f"[redacted {kind}]"


MARKER_PATTERN: Final = re.compile(r"\[redacted (email|phone|card|iban|address)\]")


def clean(text: str) -> str:
    """NFKC with invisible and bidi-control characters removed: what detection reads."""
    return unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment card numbers."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


#: ISO 13616 IBAN lengths by country (the common ones; others use the generic 15-34 rule).
_IBAN_LENGTHS: Final = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28,
    "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31,
    "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TR": 26,
}  # fmt: skip


def iban_valid(candidate: str) -> bool:
    """Country length (where known) and the ISO 7064 mod-97-10 check."""
    iban = re.sub(r"\s", "", candidate).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", iban):
        return False
    expected = _IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def find_pii(text: str, kinds: tuple[PiiKind, ...] = ALL_KINDS) -> list[PiiFinding]:
    """Every PII span in ``clean(text)``, earliest first, overlaps resolved by first kind.

    Kinds are searched in a fixed order (e-mail, card, IBAN, phone, address) and a later
    kind never claims characters an earlier one already took, so a card number is not also
    reported as a phone number.
    """
    cleaned = clean(text)
    taken: list[PiiFinding] = []
    claimed = bytearray(len(cleaned))  # 1 where an earlier kind already took the character

    for kind in ALL_KINDS:
        if kind not in kinds:
            continue
        for start, end in _candidates(kind, cleaned):
            if not any(claimed[start:end]):
                taken.append(PiiFinding(kind=kind, start=start, end=end))
                claimed[start:end] = b"\x01" * (end - start)
    return sorted(taken, key=lambda f: f.start)


def _candidates(kind: PiiKind, text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    if kind == "email":
        spans = [
            m.span() for m in _EMAIL.finditer(text) if "@" in m.group() or _obfuscated(m.group())
        ]
    elif kind == "card":
        spans = [m.span() for m in _CARD.finditer(text) if luhn_valid(_digits(m.group()))]
    elif kind == "iban":
        for match in _IBAN.finditer(text):
            span = _valid_iban_prefix(match.group())
            if span is not None:
                spans.append((match.start(), match.start() + span))
    elif kind == "phone":
        for match in _PHONE.finditer(text):
            digits = _digits(match.group())
            if 9 <= len(digits) <= 15 and len(set(digits)) > 2:
                spans.append(match.span())
    else:
        spans = [m.span() for m in _ADDRESS.finditer(text)]
    return spans


def _valid_iban_prefix(found: str) -> int | None:
    """Length of the longest space-group prefix of ``found`` that is a valid IBAN.

    The pattern is greedy and may run on into the next words ("… 7654 32 for the"); the
    IBAN is the longest run of its groups that passes the checks.
    """
    ends = [m.end() for m in re.finditer(r"\S+", found)]
    for end in reversed(ends):
        if iban_valid(found[:end]):
            return end
    return None


def _obfuscated(found: str) -> bool:
    lowered = found.lower()
    return any(token in lowered for token in ("(at)", "[at]", "{at}"))


def redact(text: str, kinds: tuple[PiiKind, ...] = ALL_KINDS) -> Redaction:
    """Replace every PII span with its marker.

    Text without PII comes back exactly as given; text with PII comes back cleaned (NFKC,
    invisible characters removed) with markers in place of the values.
    """
    findings = find_pii(text, kinds)
    if not findings:
        return Redaction(text=text, findings=())
    cleaned = clean(text)
    parts: list[str] = []
    cursor = 0
    for finding in findings:
        parts.append(cleaned[cursor : finding.start])
        parts.append(marker(finding.kind))
        cursor = finding.end
    parts.append(cleaned[cursor:])
    return Redaction(text="".join(parts), findings=tuple(findings))


def redaction_markers(text: str) -> list[str]:
    """The kinds of the ``[redacted …]`` markers already in a text (e.g. redacted upstream)."""
    return [m.group(1) for m in MARKER_PATTERN.finditer(text)]
