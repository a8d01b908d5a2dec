"""``brandloop studio link --tenant T --principal U``: a one-time sign-in link for the studio."""

from __future__ import annotations

from typing import Annotated

import typer

from brandloop.api.cli.app import app
from brandloop.api.cli.common import check_tenant_option, database, out, print_json
from brandloop.api.studio.sessions import LINK_MINUTES, create_link

studio_app = typer.Typer(
    help="The studio web app (served by brandloop serve).", no_args_is_help=True
)
app.add_typer(studio_app, name="studio")


@studio_app.command("link")
def link(
    tenant: Annotated[
        str, typer.Option("--tenant", help="the tenant to sign in to", callback=check_tenant_option)
    ],
    principal: Annotated[str, typer.Option("--principal", help="who signs in (a person)")],
    role: Annotated[
        str, typer.Option("--role", help="viewer, creator, approver or admin")
    ] = "creator",
    base_url: Annotated[
        str, typer.Option("--base-url", help="where brandloop serve listens")
    ] = "http://127.0.0.1:8000",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print a link that signs PRINCIPAL in to the studio once, within 15 minutes."""
    with database().session() as session:
        token = create_link(session, tenant=tenant, principal=principal, role=role)
    url = f"{base_url.rstrip('/')}/signin/link?token={token}"
    if as_json:
        print_json({"url": url, "tenant": tenant, "principal": principal, "role": role})
        return
    out.print(url, markup=False)
    out.print(
        f"signs in {principal} ({role}) of tenant {tenant} once, within {LINK_MINUTES} minutes",
        markup=False,
    )
