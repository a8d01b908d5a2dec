"""``brandloop verify FILE... [--json]``: check each image's Content Credentials (signature,
trust list, hard binding, receipt against this registry) and say in one line per file whether
they are valid, unverified (signed, but its run is not in this registry), invalid or absent, who
signed it and which run and template made it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from brandloop.api.cli.app import app
from brandloop.api.cli.common import database, out, print_json, settings
from brandloop.api.cli.score import read_image_file
from brandloop.artifacts import image_format
from brandloop.errors import BadInputError
from brandloop.settings import Settings
from brandloop.tools.credentials import (
    CredentialReport,
    shown_name,
    trust_anchors_pem,
    verify_image,
)

#: Exit code when a file's credentials are not valid - unverified, invalid or absent - (or
#: untrusted, with --trusted).
EXIT_NOT_VERIFIED = 6
_STYLE = {"valid": "green", "unverified": "yellow", "invalid": "red", "absent": "yellow"}


def verify_files(paths: list[Path], cfg: Settings) -> list[CredentialReport]:
    """A report per file, against the configured tenant's registry and trust list."""
    blobs = [(path, read_image_file(path)) for path in paths]
    for path, data in blobs:  # every file is an image before any is reported on
        if image_format(data) is None:
            raise BadInputError(f"{shown_name(str(path))} is not a PNG, JPEG or WebP image")
    trust = trust_anchors_pem(cfg)
    with database().session() as session:
        return [
            verify_image(data, file=str(path), session=session, tenant=cfg.tenant, trust_pem=trust)
            for path, data in blobs
        ]


def verified(report: CredentialReport, *, require_trusted: bool) -> bool:
    return report.status == "valid" and (report.trust == "trusted" or not require_trusted)


@app.command()
def verify(
    files: Annotated[list[Path], typer.Argument(help="images to check (PNG, JPEG, WebP)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the reports as JSON")] = False,
    trusted: Annotated[
        bool, typer.Option("--trusted", help="also fail files whose signer is not trusted")
    ] = False,
) -> None:
    """Verify the Content Credentials (C2PA) of FILES; exit 6 unless every one is valid."""
    reports = verify_files(files, settings())
    if as_json:
        print_json([report.model_dump(mode="json") for report in reports])
    else:
        for report in reports:
            style = _STYLE[report.status]
            out.print(Text(report.summary, style=style))
    if not all(verified(report, require_trusted=trusted) for report in reports):
        raise typer.Exit(EXIT_NOT_VERIFIED)
