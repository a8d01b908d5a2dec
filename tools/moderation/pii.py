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

#: Combining marks of the scripts whose words need them (Latin diacritics not precomposed,
#: Hebrew and Arabic points, the Indic, Thai and Lao blocks, kana voicing): ``\w`` in
#: ``re`` covers letters and digits only, and an internationalised address (RFC 6531) or
#: domain name (IDNA) is letters, digits and marks of any script.
_MARKS: Final = (
    "\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670"
    "\u06d6-\u06ed\u0900-\u0963\u0966-\u0dff\u0e00-\u0eff\u1ab0-\u1aff\u1dc0-\u1dff"
    "\u20d0-\u20ff\u3099\u309a\ufe20-\ufe2f"
)
#: A letter, digit or mark of any script (no ``_``): what a domain label is made of.
_ALNUM: Final = rf"(?:[^\W_]|[{_MARKS}])"
#: RFC 5322 ``atext`` (with RFC 6531's non-ASCII letters) and the dots between its atoms;
#: the typographic apostrophe too (``o’brien``), as a writer's software types it.
_LOCAL_INNER: Final = rf"(?:[\w{_MARKS}!#$%&'*+/=?^`{{|}}~’-]|\.(?!\.))"
#: IDNA label separators: the full stop and the ideographic one (NFKC folds the full-width
#: and half-width forms into these two).
#: Spaces may stand around a spelled-out ``(dot)``, or on both sides of a bare one; a dot
#: ending a sentence (``… example. Then``) joins nothing.
_DOT: Final = r"(?:[.\u3002]|\s+[.\u3002]\s+|\s*(?:\(dot\)|\[dot\]|\{dot\})\s*)"
_LABEL: Final = rf"{_ALNUM}(?:(?:{_ALNUM}|-){{0,61}}{_ALNUM})?"
#: A top-level domain: letters (and marks) of one script, or an A-label (``xn--…``).
_TLD: Final = rf"(?:xn--[a-z0-9-]{{1,59}}|(?:[^\W\d_]|[{_MARKS}]){{2,63}})"
_EMAIL: Final = re.compile(
    # an address starts where a run of its characters does (so each run is tried once), or
    # after a quote that is no apostrophe inside a word ('jane@…' but not o'brien's "brien")
    rf"(?<![\w{_MARKS}.!#$%&*+/=?^`{{|}}~-])(?<![\w{_MARKS}]['’])[\w{_MARKS}](?:{_LOCAL_INNER}{{0,62}}[\w{_MARKS}])?"
    r"(?:@|\s+@\s+|\s*(?:\(at\)|\[at\]|\{at\})\s*)"  # "and @acme.coffee" is a handle
    rf"{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}{_TLD}(?!{_ALNUM}|-)",
    re.IGNORECASE,
)
#: ``icon@2x.png``: an image's pixel-density suffix (Apple's ``@2x``/``@1.5x`` convention),
#: a file name whose "domain" is a scale and whose "TLD" a file type, not an address.
_SCALE_SUFFIX: Final = re.compile(
    r"@\d(?:\.\d)?x\.(?:png|jpe?g|gif|webp|svg|avif|heic|tiff?|bmp|ico|pdf)\Z", re.IGNORECASE
)
#: A dash of any typographic kind, as a hyphen between digit groups (NFKC leaves U+2010 to
#: U+2015 and U+2212 as they are; it folds the small and full-width hyphen-minus into ``-``).
_DASH: Final = "\\-\u2010\u2012\u2013\u2014\u2015\u2212"
#: 13-19 digits, optionally in groups separated by one space or dash (mixed as typed) ...
_CARD: Final = re.compile(rf"(?<![\w.,])\d(?:[ {_DASH}]?\d){{12,18}}(?![\w.,]\d|\w)")
#: ... or printed in the groups of ISO/IEC 7812 (4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4) with one
#: other separator throughout: ``4111.1111.1111.1111``, ``4111/1111/…``, ``4111_1111_…``.
_CARD_GROUPED: Final = re.compile(
    r"(?<![\w.,/])\d{4}(?P<sep>[./_])\d{4,6}(?:(?P=sep)\d{3,5}){1,3}(?![\w.,/]\d|\w)"
)
#: Two letters, two check digits, then 11-30 letters or digits, optionally grouped by spaces.
_IBAN: Final = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]){11,30}(?![A-Za-z0-9])"
)
#: International (+CC / 00CC) or national numbers with separators (ITU-T E.123: spaces;
#: national conventions: hyphens or dashes of any kind, dots); 9-15 digits in all.
_SEP: Final = rf"[\s.{_DASH}]"
_PHONE: Final = re.compile(
    r"(?<![\w+])(?:"
    rf"(?:\+|00)\d{{1,3}}{_SEP}?(?:\(\d{{1,4}}\){_SEP}?)?\d{{1,4}}(?:{_SEP}?\d{{2,4}}){{1,4}}"
    rf"|\(\d{{2,5}}\){_SEP}?\d{{3,4}}{_SEP}?\d{{3,4}}"
    rf"|0\d{{2,4}}{_SEP}?\d{{3,4}}{_SEP}?\d{{3,4}}"
    rf"|0\d(?P<pair>{_SEP})\d{{2}}(?:(?P=pair)\d{{2}}){{3}}"  # in pairs: 06 12 34 56 78
    rf"|\d{{3}}{_SEP}\d{{3}}{_SEP}\d{{4}}"
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
            m.span()
            for m in _EMAIL.finditer(text)
            if ("@" in m.group() and not _SCALE_SUFFIX.search(m.group())) or _obfuscated(m.group())
        ]
    elif kind == "card":
        for pattern in (_CARD, _CARD_GROUPED):
            spans += [m.span() for m in pattern.finditer(text) if _card_number(m.group())]
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


def _card_number(found: str) -> bool:
    """13-19 digits passing Luhn, and not a 13-digit article number (GTIN-13/EAN, which ISBNs
    are too) passing its own check digit: 13-digit cards (early Visa) are no longer issued,
    while a brief quotes barcodes and ISBNs."""
    digits = _digits(found)
    if not 13 <= len(digits) <= 19 or not luhn_valid(digits):
        return False
    return not (len(digits) == 13 and gtin13_valid(digits))


def gtin13_valid(digits: str) -> bool:
    """The GS1 check digit of a 13-digit article number (EAN-13, ISBN-13): weights 1 and 3."""
    if len(digits) != 13 or not digits.isdigit():
        return False
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == int(digits[12])


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
