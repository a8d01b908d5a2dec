"""Personal data in briefs the service stored before it redacted them (before 2026-12-05).

Since then every brief and thread message is redacted before it is stored (jobs, thread
messages, campaign plans: ``docs/signals.md``), and since 2026-12-06 thread titles and campaign
names too. Rows stored before keep their text until ``brandloop db redact`` passes the same
redactor over them; it changes only text that holds personal data, so running it again changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from brandloop.agent.nodes.intake import redacted_text
from brandloop.registry.db import Database
from brandloop.registry.models_service import CampaignRow, JobRow, ThreadMessageRow, ThreadRow

BATCH = 500
Stored = JobRow | ThreadMessageRow | ThreadRow | CampaignRow
#: what a title or a name may hold (its column)
MAX_LABEL = 200


def _brief_redacted(doc: dict[str, Any], redact: Callable[[str], str]) -> dict[str, Any] | None:
    brief = doc.get("brief")
    if not isinstance(brief, str) or (clean := redact(brief)) == brief:
        return None
    return {**doc, "brief": clean}


def redact_stored_briefs(
    db: Database, redact: Callable[[str], str] = redacted_text
) -> dict[str, int]:
    """Redact the briefs of stored jobs, thread messages and campaign plans, thread titles and
    campaign names in place; how many rows of each table changed. A batch is one transaction: stopped midway, what was redacted
    stays redacted and the rest is found again by the next run."""
    changed = {"jobs": 0, "thread_messages": 0, "threads": 0, "campaigns": 0}
    tables: tuple[tuple[str, type[Stored]], ...] = (
        ("jobs", JobRow),
        ("thread_messages", ThreadMessageRow),
        ("threads", ThreadRow),
        ("campaigns", CampaignRow),
    )
    for table, row_type in tables:
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
                for row in rows:
                    changed[table] += _redact_row(row, redact)
            if len(rows) < BATCH:
                break
            after = rows[-1].id
    return changed


def _redact_row(row: Stored, redact: Callable[[str], str]) -> int:
    if isinstance(row, JobRow):
        request = _brief_redacted(row.request, redact)
        if request is None:
            return 0
        row.request = request
        return 1
    if isinstance(row, ThreadMessageRow):
        content, brief = redact(row.content), redact(row.brief)
        if (content, brief) == (row.content, row.brief):
            return 0
        row.content, row.brief = content, brief
        return 1
    if isinstance(row, ThreadRow):
        title = redact(row.title)[:MAX_LABEL]
        if title == row.title:
            return 0
        row.title = title
        return 1
    name = redact(row.name)[:MAX_LABEL]
    assets = [_brief_redacted(a, redact) if isinstance(a, dict) else None for a in row.assets]
    if name == row.name and all(a is None for a in assets):
        return 0
    row.name = name
    row.assets = [
        new if new is not None else old for new, old in zip(assets, row.assets, strict=True)
    ]
    return 1
