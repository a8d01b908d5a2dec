"""Personal data and configured credentials in briefs the service stored before it kept them out.

Since 2026-12-05 every brief and thread message is redacted before it is stored (jobs, thread
messages, campaign plans: ``docs/signals.md``), and since 2026-12-06 thread titles and campaign
names too. Since session 25 text holding a configured credential is refused before it is
stored (``api/input_guard.py``, the CLI's value check). Rows stored before keep their text until
``brandloop db redact`` passes over them: :func:`redact_stored_briefs` with the redactor runs
use, :func:`redact_stored_credentials` replacing each configured credential with the marker
every other secret gets (``[redacted]``). Each changes only text that holds what it takes
out, so running it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import select

from brandloop.agent.nodes.intake import redacted_text
from brandloop.registry.db import Database
from brandloop.registry.models_service import CampaignRow, JobRow, ThreadMessageRow, ThreadRow
from brandloop.tools.providers._http import REDACTED

BATCH = 500
Stored = JobRow | ThreadMessageRow | ThreadRow | CampaignRow
#: what a title or a name may hold (its column)
MAX_LABEL = 200
TABLES: tuple[tuple[str, type[Stored]], ...] = (
    ("jobs", JobRow),
    ("thread_messages", ThreadMessageRow),
    ("threads", ThreadRow),
    ("campaigns", CampaignRow),
)


def _each_row(db: Database, change: Callable[[Stored], bool]) -> dict[str, int]:
    """Apply ``change`` to every row of :data:`TABLES`; how many rows of each table it changed.
    A batch is one transaction: stopped midway, what was changed stays changed and the rest is
    found again by the next run."""
    changed = dict.fromkeys((table for table, _ in TABLES), 0)
    for table, row_type in TABLES:
        after = ""
        while True:
            with db.session() as session:
                rows: list[Stored] = list(
                    session.scalars(
                        select(row_type)
                        .where(row_type.id > after)
                        .order_by(row_type.id)
                        .limit(BATCH)
                    )
                )
                changed[table] += sum(change(row) for row in rows)
            if len(rows) < BATCH:
                break
            after = rows[-1].id
    return changed


# --------------------------------------------------------------------------- personal data


def _brief_redacted(doc: dict[str, Any], redact: Callable[[str], str]) -> dict[str, Any] | None:
    brief = doc.get("brief")
    if not isinstance(brief, str) or (clean := redact(brief)) == brief:
        return None
    return {**doc, "brief": clean}


def redact_stored_briefs(
    db: Database, redact: Callable[[str], str] = redacted_text
) -> dict[str, int]:
    """Redact the briefs of stored jobs, thread messages and campaign plans, thread titles and
    campaign names in place; how many rows of each table changed."""
    return _each_row(db, lambda row: _redact_row(row, redact))


def _redact_row(row: Stored, redact: Callable[[str], str]) -> bool:
    if isinstance(row, JobRow):
        request = _brief_redacted(row.request, redact)
        if request is None:
            return False
        row.request = request
        return True
    if isinstance(row, ThreadMessageRow):
        content, brief = redact(row.content), redact(row.brief)
        if (content, brief) == (row.content, row.brief):
            return False
        row.content, row.brief = content, brief
        return True
    if isinstance(row, ThreadRow):
        title = redact(row.title)[:MAX_LABEL]
        if title == row.title:
            return False
        row.title = title
        return True
    name = redact(row.name)[:MAX_LABEL]
    assets = [_brief_redacted(a, redact) if isinstance(a, dict) else None for a in row.assets]
    if name == row.name and all(a is None for a in assets):
        return False
    row.name = name
    row.assets = [
        new if new is not None else old for new, old in zip(assets, row.assets, strict=True)
    ]
    return True


# --------------------------------------------------------------------------- credentials


def without_credentials(text: str, credentials: Collection[str]) -> str:
    """``text`` with each of ``credentials`` it holds whole replaced by ``[redacted]`` (the
    longest first, so one holding another goes whole)."""
    for secret in sorted(credentials, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _scrubbed(value: Any, credentials: Collection[str]) -> Any:
    """A JSON value with :func:`without_credentials` applied to every text in it, keys too."""
    if isinstance(value, str):
        return without_credentials(value, credentials)
    if isinstance(value, dict):
        return {
            _scrubbed(key, credentials): _scrubbed(item, credentials) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_scrubbed(item, credentials) for item in value]
    return value


#: the columns of each row type that hold what a user typed, or what a run made of it
_TEXT_COLUMNS: dict[type[Stored], tuple[str, ...]] = {
    JobRow: ("request", "result", "error"),
    ThreadMessageRow: ("content", "brief", "edit"),
    ThreadRow: ("title",),
    CampaignRow: ("name", "assets"),
}
_LABELS = ("title", "name")


def redact_stored_credentials(db: Database, credentials: Collection[str]) -> dict[str, int]:
    """Replace every one of ``credentials`` (the values the settings configure) found whole in
    stored jobs (their request, result and error), thread messages (content, brief and edit),
    thread titles and campaigns (name and plan) with ``[redacted]``, in place; how many rows
    of each table changed. The values are never printed, logged nor returned."""
    known = [c for c in credentials if c]
    if not known:
        return dict.fromkeys((table for table, _ in TABLES), 0)

    def change(row: Stored) -> bool:
        changed = False
        for column in _TEXT_COLUMNS[type(row)]:
            value = getattr(row, column)
            clean = _scrubbed(value, known)
            if column in _LABELS:
                clean = clean[:MAX_LABEL]
            if clean != value:
                setattr(row, column, clean)
                changed = True
        return changed

    return _each_row(db, change)
