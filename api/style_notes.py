"""Style notes: how every entry point (CLI, HTTP API, studio) adds, lists and forgets them.

A note is kept under the brand's registry id, the key a run's recall reads. Personal data and
key-shaped tokens (another service's API key: ``tools/moderation/keys.py``) in it are redacted
before it is stored, its padding at either end trimmed: a note reaches every later prompt of the brand, the provider,
and the receipt inside each image, as a brief would (``agent/nodes/intake.py``). For the same
reason a note passes the text gate a rendered prompt passes in plan (the brand's moderation
policy and forbidden terms, the minors line included) before it is stored: a refused note is
never kept, and its refusal is on the audit record (categories, findings, a digest; no text).

Before 2026-12-04 the studio's notes, and the lists and deletions of ``/v1/memory/notes``, used
the brand's *name* as the key: the studio's notes never reached a run, and notes added through
the API were neither listed nor forgotten. Listing a brand's notes moves any such note to the id.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from brandloop.agent.replay import forget_replays
from brandloop.domain import BRAND_ID, MAX_NOTE_CHARS, is_blank
from brandloop.errors import BadInputError, RefusedError
from brandloop.memory.store import BrandMemory, MemoryHit
from brandloop.registry import crud
from brandloop.registry.models import BrandRow
from brandloop.tools.moderation.keys import redact_keys
from brandloop.tools.moderation.lexical import normalised_text
from brandloop.tools.moderation.minors import AUDIT_ACTION, crosses_the_line
from brandloop.tools.moderation.pii import redact
from brandloop.tools.moderation.policy import load_brand_moderation_policy
from brandloop.tools.moderation.text import moderate_with_policy


@dataclass(frozen=True)
class AddedNote:
    id: str
    text: str
    redacted: tuple[str, ...]  # the kinds taken out, e.g. ("email",); "key": an API key


#: The audit log's subject type of a refused style note (its subject id is the brand's id).
NOTE_SUBJECT = "style_note"


def add_style_note(
    memory: BrandMemory,
    session: Session,
    *,
    tenant: str,
    brand: BrandRow,
    actor: str,
    text: str,
    policy_dirs: Sequence[Path] = (),
) -> AddedNote:
    """Store a style note for ``brand``, its personal data redacted first.

    Raises :class:`BadInputError` for a blank note (bad input at every entry point, as a blank
    brief is: never a policy refusal), and :class:`RefusedError` (nothing stored, the refusal
    audited in a transaction of its own on ``session``'s database) when the note fails the
    brand's text gate, as it would fail every later run's plan. ``policy_dirs``: where the
    brand's policy file may be."""
    if is_blank(text):
        raise BadInputError("note is empty")
    kit = crud.brand_kit(brand)
    policy = load_brand_moderation_policy(kit.slug, search=list(policy_dirs))
    limit = min(MAX_NOTE_CHARS, policy.text.max_chars)
    # what would be kept is held to the limit: padding at either end is never stored, nor a
    # character that shows nothing or reorders what a reader sees (a note reaches every later
    # prompt: "use teal \u202eevil\u202c" went to the provider as typed; outside tester)
    text = _INVISIBLE.sub(lambda m: " " if m.group() == "\u200b" else "", text).strip()
    if is_blank(text):
        raise BadInputError("note is empty")
    _check_length(text, limit, "")
    # another service's key pasted into a note would reach every later prompt of the brand,
    # the provider and the signed receipts, as one in a brief would: it goes first, as there
    keyless, keys = redact_keys(text)
    redaction = redact(keyless, tuple(policy.pii.redact))
    _check_length(redaction.text, limit, " once its personal data is redacted")
    verdict = moderate_with_policy(
        redaction.text, policy, forbidden_terms=kit.forbidden_terms, source="style_note"
    )
    if not verdict.allowed:
        crud.audit_committed(
            session,
            tenant=tenant,
            actor=actor,
            # the minors line's own action, whatever else fired (docs/signals.md)
            action=AUDIT_ACTION
            if crosses_the_line(verdict)
            else "moderation.refused." + "_".join(c.replace("/", "_") for c in verdict.categories),
            subject_type=NOTE_SUBJECT,
            subject_id=brand.id,
            detail={
                "source": verdict.source,
                "categories": verdict.categories,
                "findings": [
                    f.model_dump(mode="json", exclude={"excerpt"}) for f in verdict.findings
                ],
                "normalised_sha256": hashlib.sha256(
                    normalised_text(redaction.text).encode()
                ).hexdigest(),
            },
        )
        raise RefusedError(
            f"style note refused, nothing stored: it fails moderation ({', '.join(verdict.categories)})"
        )
    # what the store keeps, and so what the caller is told was kept: no padding at either end
    kept = redaction.text.strip()
    note_id = memory.add_note(tenant=tenant, brand=brand.id, text=kept)
    kinds = tuple(
        sorted({finding.kind for finding in redaction.findings} | ({"key"} if keys else set()))
    )
    return AddedNote(id=note_id, text=kept, redacted=kinds)


#: the characters a note loses: bidirectional overrides, embeddings and isolates, zero-width
#: spaces (read as a space), the word joiner, the byte-order mark and soft hyphens; the
#: zero-width joiner and non-joiner stay (some scripts spell words with them, emoji join)
_INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u200b\u2060\ufeff\u00ad]")


def _check_length(text: str, limit: int, how: str) -> None:
    """A note too long is bad input naming the limit, as a brief too long is: never a
    moderation refusal (the text gate refuses what is past the brand's ``max_chars``, which
    a note is held to here, before the gate sees it)."""
    if len(text) > limit:
        raise BadInputError(f"note is {len(text)} characters{how}; the limit is {limit}")


def list_style_notes(
    memory: BrandMemory,
    *,
    tenant: str,
    brand: BrandRow,
    limit: int | None = None,
    offset: int = 0,
) -> list[MemoryHit]:
    """The brand's style notes, newest first, ``limit`` from ``offset`` (by default all of
    them); notes once keyed by its name move to its id first."""
    _adopt_name_keyed(memory, tenant=tenant, brand=brand)
    return memory.notes(tenant=tenant, brand=brand.id, limit=limit, offset=offset)


def forget_style_note(
    memory: BrandMemory, session: Session, *, tenant: str, brand: BrandRow, note_id: str
) -> int:
    """Delete one style note of the brand (text and vector); return how many were deleted.
    The brand's runs whose accepted prompts carry its text are no repeat's to replay any more
    (``forget_replays``), in ``session``'s transaction."""
    _adopt_name_keyed(memory, tenant=tenant, brand=brand)
    texts = memory.note_forms(tenant=tenant, brand=brand.id, record_id=note_id)
    gone = memory.forget(tenant=tenant, brand=brand.id, record_id=note_id)
    forget_replays(session, tenant=tenant, brand_id=brand.id, texts=texts)
    return gone


def _adopt_name_keyed(memory: BrandMemory, *, tenant: str, brand: BrandRow) -> None:
    """Move the notes kept under the brand's name to its id (the key before 2026-12-04)."""
    if not _may_key_notes(brand.name, brand.id):
        return
    memory.move_notes(tenant=tenant, source=brand.name, target=brand.id)


def _may_key_notes(name: str, brand_id: str) -> bool:
    """Whether notes kept under ``name`` can be the name-keyed notes of the brand ``brand_id``.

    Not a name spelt like a brand id: notes under an id are that brand's (a brand renamed to
    another's id took that brand's notes the next time its own were listed, an outside tester
    found), and such names are refused now (``domain.check_brand_name``) but one may be stored.
    Nor a name with outer spaces: it was never a usable memory key, so nothing is kept under it.
    """
    if name == brand_id or name != name.strip():
        return False
    return BRAND_ID.fullmatch(name) is None
