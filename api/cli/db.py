"""``brandloop db upgrade``: the explicit migration step; ``brandloop db redact``: what older
releases stored in clear text (personal data, configured credentials), taken out.

The embedded SQLite database migrates itself on first use. A PostgreSQL deployment runs this
once per release, before it starts API replicas and workers: they refuse to start on an
outdated schema instead of racing each other to migrate it (docs/runbook.md).
"""

from __future__ import annotations

from typing import Annotated

import typer

from brandloop.api.cli.app import app
from brandloop.api.cli.common import credentials, database, out, print_json

db_app = typer.Typer(
    help="The registry database: migrate its schema, redact what briefs stored before "
    "redaction hold (personal data, configured credentials).",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")


def _names(revisions: set[str]) -> str:
    return ", ".join(sorted(revisions)) or "empty"


@db_app.command("upgrade")
def upgrade(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Migrate the database (``BRANDLOOP_DATABASE_URL``) to this release's schema.

    Safe to run again, and from several processes at once: on PostgreSQL they take turns.
    """
    db = database()
    before, after = db.upgrade()
    if as_json:
        print_json(
            {
                "dialect": db.dialect,
                "before": sorted(before),
                "after": sorted(after),
                "upgraded": before != after,
            }
        )
    elif before == after:
        out.print(f"{db.dialect} schema already current at {_names(after)}")
    else:
        out.print(f"{db.dialect} schema upgraded from {_names(before)} to {_names(after)}")


@db_app.command("redact")
def redact(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Redact personal data in briefs stored before the service redacted them (jobs, thread
    messages, campaign plans; 2026-12-05) and in thread titles and campaign names (2026-12-06),
    with the redactor runs use; and replace each configured credential (a provider key, a
    signer token, ...) that text stored before session 25 holds with `[redacted]`. Run once
    after upgrading; again, it changes nothing. Counts rows; never prints a value."""
    from brandloop.api.stored_briefs import redact_stored_briefs, redact_stored_credentials

    db = database()
    # credentials first: the personal-data redactor could take a part of one (digits read as
    # a phone number), leaving the rest where the whole is no longer found
    scrubbed = redact_stored_credentials(db, credentials().keys())
    changed = redact_stored_briefs(db)
    if as_json:
        print_json({"redacted": changed, "credentials": scrubbed})
        return
    for what, counts in (("personal data", changed), ("configured credentials", scrubbed)):
        listed = ", ".join(f"{n} {table}" for table, n in counts.items())
        out.print(f"redacted {what} in {sum(counts.values())} stored row(s): {listed}")
