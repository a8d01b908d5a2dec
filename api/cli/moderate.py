"""``brandloop moderate (TEXT | --image PATH)``: the verdict our gates give a brief, a prompt
or an image, with PII and prompt-injection findings for text."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from brandloop.api.cli.app import app
from brandloop.api.cli.common import out, print_json, settings
from brandloop.api.cli.score import read_image_file, resolve_brand
from brandloop.domain import ModerationVerdict
from brandloop.errors import BadInputError
from brandloop.tools.moderation.image import NudeNetModerator
from brandloop.tools.moderation.injection import detect_injection
from brandloop.tools.moderation.pii import find_pii
from brandloop.tools.moderation.policy import load_moderation_policy
from brandloop.tools.moderation.text import moderate_text
from brandloop.tools.providers.errors import MalformedResponseError
from brandloop.tools.scoring.decode import decode_image

EXIT_BLOCKED = 3


def _print_verdict(verdict: ModerationVerdict, extra: dict[str, Any]) -> None:
    if verdict.allowed:
        out.print(f"[green]allowed[/green] ({verdict.source})")
    else:
        out.print(f"[red]blocked[/red] ({verdict.source}): {', '.join(verdict.categories)}")
    for reason in verdict.reasons:
        out.print(f"  - {reason}")
    for name, value in extra.items():
        if value:
            out.print(f"  {name}: {', '.join(value) if isinstance(value, list) else value}")


@app.command("moderate")
def moderate(
    text: Annotated[
        str | None, typer.Argument(help="text to check (a brief or prompt); '-' reads stdin")
    ] = None,
    image: Annotated[Path | None, typer.Option("--image", help="an image file to check")] = None,
    brand: Annotated[
        str | None, typer.Option("--brand", help="brand kit YAML or id/name: its forbidden terms")
    ] = None,
    policy_path: Annotated[
        Path | None, typer.Option("--policy", help="moderation policy YAML (default: packaged)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Moderate a text (blocklist, brand terms, profanity model, length; PII and prompt
    injection are reported) or an image (NudeNet). Exit 0 allowed, 3 blocked, 2 bad input."""
    if (text is None) == (image is None):
        raise BadInputError("give either TEXT or --image PATH")
    policy = load_moderation_policy(policy_path)
    extra: dict[str, Any] = {}
    if image is not None:
        data = read_image_file(image)
        try:
            decoded = decode_image(data, max_pixels=policy.image.max_pixels)
        except MalformedResponseError as exc:
            raise BadInputError(f"{image}: {exc}") from exc
        verdict = NudeNetModerator(policy.image).moderate(decoded)
    elif text is not None:
        body = sys.stdin.read() if text == "-" else text
        if not body.strip():
            raise BadInputError("text is empty")
        forbidden = resolve_brand(brand, tenant=settings().tenant).forbidden_terms if brand else []
        verdict = moderate_text(
            body,
            forbidden_terms=forbidden,
            source="text",
            max_chars=policy.text.max_chars,
            profanity_threshold=policy.text.profanity_threshold,
        )
        pii = sorted({f.kind for f in find_pii(body, tuple(policy.pii.redact))})
        extra = {"pii": pii, "injection": list(detect_injection(body).patterns)}
    if as_json:
        print_json({**verdict.model_dump(mode="json"), **extra})
    else:
        _print_verdict(verdict, extra)
    if not verdict.allowed:
        raise typer.Exit(EXIT_BLOCKED)
