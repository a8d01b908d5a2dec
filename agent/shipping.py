"""From an accepted attempt to the file brandloop ships: the requested format, the receipt and
IPTC digital source type in the file's metadata, then a signed C2PA manifest over the final
bytes, stored under the signed file's sha256 and recorded with its perceptual hash.

``finalize`` calls :func:`ship` for each accepted attempt (format, metadata and signing, no
registry writes, so no write lock is held while a signer works), then :func:`record` for each
inside its one registry transaction (which writes the file under the sha256's lock).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.orm import Session

from brandloop.agent.context import RunContext
from brandloop.artifacts import image_format, sha256_hex
from brandloop.domain import (
    AcceptanceRule,
    AcceptedImage,
    Attempt,
    ContentCredentials,
    ImageFormat,
    Receipt,
    ReplayOf,
)
from brandloop.providers import PREVIEW_PROVIDER
from brandloop.registry import crud
from brandloop.registry.artifact_owners import keep_artifact
from brandloop.reproduce import perceptual_hash
from brandloop.tools.credentials import TRANSCODED, digital_source_type, sign_image, transcode

PREVIEW_NOTE = (
    "procedural is brandloop's offline preview renderer: deterministic shapes and colours, "
    "not a generative model"
)


def replay_note(replay_of: ReplayOf | None) -> str:
    """What a cache hit's receipt says in words: which call it replays, and that its provider
    request id, returned seed and raw image are that call's."""
    source = (
        f"run {replay_of.run_id} attempt {replay_of.attempt_id}"
        if replay_of is not None
        else "an earlier attempt no longer in the registry"
    )
    return (
        f"served from the generation cache at $0, replaying {source}: no provider call was made "
        "for this image; provider_request_id, seed_returned and source_sha256 are that call's"
    )


_ASKED = {"template", "prompt", "negative_prompt", "model", "width", "height", "params"}


def is_preview(provider: str) -> bool:
    """The procedural renderer makes previews; every other provider is a generative model."""
    return provider == PREVIEW_PROVIDER


@dataclass(frozen=True)
class Shipped:
    """A signed image and what the registry should record about it."""

    image: AcceptedImage
    receipt: Receipt
    data: bytes
    attempt_id: str
    phash: str


def build_receipt(
    ctx: RunContext,
    run_id: str,
    attempt: Attempt,
    redactions: list[str] | None = None,
    *,
    fmt: ImageFormat = "png",
    edits: list[str] | None = None,
    replay_of: ReplayOf | None = None,
) -> Receipt:
    """The receipt of an accepted attempt; a cache hit's names the attempt it replays
    (``replay_of``) and says so in its notes."""
    cand = attempt.candidate
    spec = ctx.model(cand.model)
    edits = list(edits or [])
    notes = [PREVIEW_NOTE] if is_preview(spec.provider) else []
    if attempt.cache_hit:
        notes.append(replay_note(replay_of))
    return Receipt(
        run_id=run_id,
        attempt_id=attempt.id,
        source_sha256=attempt.artifact_sha256,
        # what was asked, as the candidate says it
        **cand.model_dump(include=_ASKED),
        seed_requested=cand.seed,
        model_version=spec.version,
        provider=spec.provider,
        provider_request_id=attempt.provider_request_id,
        seed_returned=attempt.seed_returned,
        revised_prompt=attempt.revised_prompt,
        tries=attempt.tries,
        scores=attempt.scores.values() if attempt.scores else {},
        composite=round(attempt.scores.composite, 4) if attempt.scores else 0.0,
        moderation=[attempt.moderation] if attempt.moderation else [],
        cost_usd=attempt.cost_usd,
        redactions=list(redactions or []),
        notes=notes,
        preview=is_preview(spec.provider),
        format=fmt,
        acceptance=AcceptanceRule(
            accept_composite=ctx.policy.accept_composite,
            require_all_signals=ctx.policy.require_all_signals,
        ),
        digital_source_type=digital_source_type(spec.provider, edits),
        edits=edits,
        cache_hit=attempt.cache_hit,
        replay_of=replay_of if attempt.cache_hit else None,
    )


async def ship(
    ctx: RunContext,
    *,
    run_id: str,
    attempt: Attempt,
    redactions: list[str],
    output_format: ImageFormat | None,
) -> Shipped:
    """Sign and store one accepted attempt's image (the file only; see :func:`record`)."""
    if attempt.artifact_sha256 is None or attempt.scores is None:
        raise ValueError(f"attempt {attempt.id} was accepted without an image or scores")
    with ctx.db.session() as session:
        source = crud.get_artifact(session, tenant=ctx.tenant, sha256=attempt.artifact_sha256)
        edits = list(source.edits or []) if source is not None else []
        replayed = (
            crud.replayed_attempt(
                session,
                tenant=ctx.tenant,
                artifact_sha256=attempt.artifact_sha256,
                provider_request_id=attempt.provider_request_id,
            )
            if attempt.cache_hit
            else None
        )
        replay_of = ReplayOf(run_id=replayed.run_id, attempt_id=replayed.id) if replayed else None
    data = ctx.artifacts.get(attempt.artifact_sha256)
    fmt: ImageFormat = image_format(data) or "png"
    if output_format is not None and output_format != fmt:
        data, fmt = await asyncio.to_thread(transcode, data, output_format), output_format
        edits.append(TRANSCODED)
    receipt = build_receipt(
        ctx, run_id, attempt, redactions, fmt=fmt, edits=edits, replay_of=replay_of
    )
    signed = await asyncio.to_thread(
        sign_image, data, fmt, receipt.model_dump(mode="json"), ctx.signer
    )
    sha = sha256_hex(signed.data)
    receipt = receipt.model_copy(
        update={
            "sha256": sha,
            "credentials": ContentCredentials(
                manifest_label=signed.manifest_label,
                format=fmt,
                digital_source_type=receipt.digital_source_type or "",
                signer=ctx.signer.name,
                signer_kind=ctx.signer.kind,
                receipt_sha256=receipt.content_digest(),
            ),
        }
    )
    phash = await asyncio.to_thread(perceptual_hash, signed.data)
    image = AcceptedImage(
        path=str(ctx.artifacts.path_of(signed.data, sha)),
        sha256=sha,
        model=attempt.candidate.model,
        seed=attempt.seed_returned,
        template=attempt.candidate.template,
        prompt=attempt.candidate.prompt,
        negative_prompt=attempt.candidate.negative_prompt,
        scores=attempt.scores.values(),
        composite=round(attempt.scores.composite, 4),
        cost_usd=attempt.cost_usd,
        width=attempt.candidate.width,
        height=attempt.candidate.height,
        preview=receipt.preview,
        cache_hit=attempt.cache_hit,
        format=fmt,
        manifest_label=signed.manifest_label,
    )
    return Shipped(
        image=image,
        receipt=receipt,
        data=signed.data,
        attempt_id=attempt.id,
        phash=f"{phash:016x}",
    )


def record(session: Session, ctx: RunContext, shipped: Shipped) -> None:
    """Keep the shipped image for the run's tenant: the file, and the artifact row with its
    receipt and perceptual hash."""
    keep_artifact(
        session,
        ctx.artifacts,
        shipped.data,
        tenant=ctx.tenant,
        width=shipped.image.width,
        height=shipped.image.height,
        run_id=shipped.receipt.run_id,
        attempt_id=shipped.attempt_id,
        receipt=shipped.receipt.model_dump(mode="json"),
        phash=shipped.phash,
    )
