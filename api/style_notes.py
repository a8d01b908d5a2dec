"""Style notes: how every entry point (CLI, HTTP API, studio) adds, lists and forgets them.

A note is kept under the brand's registry id, the key a run's recall reads. Personal data in it
is redacted before it is stored: a note reaches every later prompt of the brand, the provider,
and the receipt inside each image, as a brief would (``agent/nodes/intake.py``).

Before 2026-12-04 the studio's notes, and the lists and deletions of ``/v1/memory/notes``, used
the brand's *name* as the key: the studio's notes never reached a run, and notes added through
the API were neither listed nor forgotten. Listing a brand's notes moves any such note to the id.
"""

from __future__ import annotations

from dataclasses import dataclass

from brandloop.memory.store import BrandMemory, MemoryHit
from brandloop.registry.models import BrandRow
from brandloop.tools.moderation.pii import redact
from brandloop.tools.moderation.policy import default_moderation_policy


@dataclass(frozen=True)
class AddedNote:
    id: str
    text: str
    redacted: tuple[str, ...]  # the kinds of personal data taken out, e.g. ("email",)


def add_style_note(memory: BrandMemory, *, tenant: str, brand_id: str, text: str) -> AddedNote:
    """Store a style note for the brand of registry id ``brand_id``, its personal data
    redacted first."""
    redaction = redact(text, tuple(default_moderation_policy().pii.redact))
    note_id = memory.add_note(tenant=tenant, brand=brand_id, text=redaction.text)
    kinds = tuple(sorted({finding.kind for finding in redaction.findings}))
    return AddedNote(id=note_id, text=redaction.text, redacted=kinds)


def list_style_notes(memory: BrandMemory, *, tenant: str, brand: BrandRow) -> list[MemoryHit]:
    """The brand's style notes (up to 100), newest first; notes once keyed by its name move
    to its id first."""
    _adopt_name_keyed(memory, tenant=tenant, brand=brand)
    return memory.notes(tenant=tenant, brand=brand.id)


def forget_style_note(memory: BrandMemory, *, tenant: str, brand: BrandRow, note_id: str) -> int:
    """Delete one style note of the brand (text and vector); return how many were deleted."""
    _adopt_name_keyed(memory, tenant=tenant, brand=brand)
    return memory.forget(tenant=tenant, brand=brand.id, record_id=note_id)


def _adopt_name_keyed(memory: BrandMemory, *, tenant: str, brand: BrandRow) -> None:
    # a name with outer spaces was never a usable memory key, so nothing can be kept under it
    if brand.name != brand.id and brand.name == brand.name.strip():
        memory.move_notes(tenant=tenant, source=brand.name, target=brand.id)
