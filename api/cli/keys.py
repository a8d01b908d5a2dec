"""``brandloop keys create|list|revoke``: API keys for the HTTP service, shown once."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from brandloop.api.auth import ROLES, create_key, get_key, list_keys, revoke_key
from brandloop.api.cli import tables
from brandloop.api.cli.app import app
from brandloop.api.cli.common import check_tenant_option, database, out, print_json
from brandloop.api.cli.tables import Column, Wide
from brandloop.errors import NotFoundError

keys_app = typer.Typer(help="API keys for the HTTP service.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def create(
    tenant: Annotated[
        str, typer.Option(help="the tenant the key acts for", callback=check_tenant_option)
    ],
    role: Annotated[str, typer.Option(help="viewer | creator | approver | admin")],
    principal: Annotated[
        str,
        typer.Option(help="whose key it is: a user name, created if new (exact, case-sensitive)"),
    ],
    name: Annotated[str, typer.Option(help="a note on what the key is for")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Make a key. The key is printed once and only its hash is stored."""
    with database().session() as session:
        row, key = create_key(
            session, tenant=tenant, role=role, principal=principal, name=name, actor="cli"
        )
        key_id = row.id
    if as_json:
        print_json(
            {"key": key, "tenant": tenant, "principal": principal, "role": role, "id": key_id}
        )
        return
    out.print(key)
    out.print(
        Text(
            f"{key_id} of {principal} for tenant {tenant} as {role}; shown once, store it now",
            style="dim",
        )
    )


@keys_app.command("list")
def list_(
    tenant: Annotated[str, typer.Option(help="the tenant", callback=check_tenant_option)],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    wide: Wide = False,
) -> None:
    """The tenant's keys, oldest first: id, when it was made, principal, role, name, revoked
    (``--wide`` adds the prefix; never the secrets)."""
    with database().session() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": r.id,
                "principal": r.principal,
                "role": r.role,
                "name": r.name,
                "prefix": r.prefix,
                "created_at": r.created_at.isoformat(),
                "revoked": r.revoked_at is not None,
            }
            for r in list_keys(session, tenant=tenant)
        ]
    if as_json:
        print_json(rows)
        return
    table_rows: list[tuple[str, ...]]
    if wide:
        columns: tuple[Column, ...] = (
            Column("id", key=True),
            Column("principal"),
            Column("role"),
            Column("revoked"),
            Column("prefix"),
            Column("name", text=True),
            Column("created"),
        )
        table_rows = [
            (
                r["id"],
                r["principal"],
                r["role"],
                "yes" if r["revoked"] else "",
                r["prefix"],
                r["name"],
                r["created_at"][:19],
            )
            for r in rows
        ]
    else:
        # two keys of one principal and role (a rotation) differ by when they were made and
        # their name: each id has its creation time under it, so all fits 80 columns
        columns = (
            Column("id / created"),
            Column("principal"),
            Column("role"),
            Column("revoked"),
            Column("name", text=True),
        )
        table_rows = [
            (
                f"{r['id']}\n{r['created_at'][:19].replace('T', ' ')}",
                r["principal"],
                r["role"],
                "yes" if r["revoked"] else "",
                r["name"],
            )
            for r in rows
        ]
    tables.show(out, None, columns, table_rows, wide=wide)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (key_...)")],
    tenant: Annotated[str, typer.Option(help="the tenant", callback=check_tenant_option)],
) -> None:
    """Revoke a key (a running server notices within a few seconds)."""
    with database().session() as session:
        row = get_key(session, tenant=tenant, key_id=key_id)
        if row is None:
            raise NotFoundError(f"no key {key_id} for tenant {tenant}")
        revoke_key(session, row=row, actor="cli")
    out.print(f"revoked {key_id}")


__all__ = ["ROLES", "keys_app"]
