"""``brandloop moderate (TEXT | --image PATH)``: the verdict our gates give a brief, a prompt
or an image, with PII and prompt-injection findings for text. ``--explain`` says which layer
fired, in which category, on which span of the normalised (PII-redacted) text."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from brandloop import event_loop
from brandloop.api.cli.app import app
from brandloop.api.cli.common import out, print_json, settings
from brandloop.api.cli.score import read_image_file, resolve_brand
from brandloop.domain import ModerationVerdict, is_blank
from brandloop.errors import BadInputError, check_utf8
from brandloop.tools.moderation.explain import describe
from brandloop.tools.moderation.hosted import ask, build_hosted_moderator, combined
from brandloop.tools.moderation.image import NudeNetModerator
from brandloop.tools.moderation.injection import detect_injection
from brandloop.tools.moderation.lexical import normalised_text
from brandloop.tools.moderation.pii import find_pii
from brandloop.tools.moderation.policy import (
    ModerationPolicy,
    load_brand_moderation_policy,
    load_moderation_policy,
)
from brandloop.tools.moderation.text import moderate_with_policy
from brandloop.tools.providers.errors import MalformedResponseError
from brandloop.tools.scoring.decode import decode_image

EXIT_BLOCKED = 3


def _print_verdict(verdict: ModerationVerdict, extra: dict[str, Any], *, explain: bool) -> None:
    if verdict.allowed:
        out.print(Text.assemble(("allowed", "green"), f" ({verdict.source})"))
    else:
        out.print(
            Text.assemble(
                ("blocked", "red"), f" ({verdict.source}): {', '.join(verdict.categories)}"
            )
        )
    for reason in verdict.reasons:
        out.print(f"  - {reason}", markup=False)
    if explain:
        for finding in verdict.findings:
            out.print(f"  why: {describe(finding)}", markup=False)
    for name, value in extra.items():
        if value:
            shown = ", ".join(value) if isinstance(value, list) else value
            out.print(f"  {name}: {shown}", markup=False)


def _with_hosted(
    verdict: ModerationVerdict, policy: ModerationPolicy, *, text: str | None, image: bytes | None
) -> ModerationVerdict:
    """The hosted service's verdict added when one is configured and the offline layers passed
    (as in a run); when it cannot answer, the policy's ``hosted.on_error`` decides."""
    hosted = build_hosted_moderator(settings())
    if hosted is None or not verdict.allowed:
        return verdict
    images = [image] if image is not None else []
    answer, note = event_loop.run(
        ask(hosted, policy.hosted, source=verdict.source, text=text, images=images)
    )
    return combined(verdict, answer, note)


def _read_stdin() -> str:
    """Standard input as UTF-8 text; other bytes are bad input, not text to moderate."""
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
    if isinstance(data, str):  # a stream without bytes underneath (a test's StringIO)
        return check_utf8(data, "standard input")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError(
            f"standard input is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start})"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as a text stream reads it


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
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="say which layer fired, in which category, on which span of the normalised "
            "text (PII redacted)",
        ),
    ] = False,
) -> None:
    """Moderate a text (every offline layer: lexical with look-alike senses, the minors line,
    the semantic classifier, brand terms, profanity, length; PII and prompt injection are
    reported) or an image (NudeNet). With --brand the brand's moderation policy applies.
    Exit 0 allowed, 3 blocked, 2 bad input."""
    if (text is None) == (image is None):
        raise BadInputError("give either TEXT or --image PATH")
    kit = resolve_brand(brand, tenant=settings().tenant) if brand else None
    policy: ModerationPolicy
    if policy_path is not None or kit is None:
        policy = load_moderation_policy(policy_path)
    else:
        policy = load_brand_moderation_policy(kit.slug, search=[settings().data_dir / "policies"])
    extra: dict[str, Any] = {}
    body = ""
    data: bytes | None = None
    if image is not None:
        data = read_image_file(image)
        try:
            decoded = decode_image(data, max_pixels=policy.image.max_pixels)
        except MalformedResponseError as exc:
            raise BadInputError(f"{image}: {exc}") from exc
        verdict = NudeNetModerator(policy.image).moderate(decoded)
    elif text is not None:
        body = _read_stdin() if text == "-" else text
        if is_blank(body):
            raise BadInputError("text is empty")
        forbidden = kit.forbidden_terms if kit is not None else []
        verdict = moderate_with_policy(body, policy, forbidden_terms=forbidden, source="text")
        pii = sorted({f.kind for f in find_pii(body, tuple(policy.pii.redact))})
        extra = {"pii": pii, "injection": list(detect_injection(body).patterns)}
        if explain:
            extra["normalised"] = normalised_text(body)
    verdict = _with_hosted(verdict, policy, text=body if image is None else None, image=data)
    if as_json:
        print_json({**verdict.model_dump(mode="json"), **extra})
    else:
        _print_verdict(verdict, extra, explain=explain)
    if not verdict.allowed:
        raise typer.Exit(EXIT_BLOCKED)
