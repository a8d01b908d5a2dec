"""Reproduce a run's accepted images from their receipts and say how close each one came.

For every accepted image the receipt names the exact inputs (prompt, negative prompt, seed,
size, params, model and version) and ``source_sha256``, the bytes the provider returned before
the receipt chunk was added. The same request goes to the same provider again; the new bytes are
compared with those raw bytes: ``byte-identical`` (same sha256), ``perceptually-identical``
(64-bit DCT perceptual hashes within :data:`PHASH_IDENTICAL_DISTANCE` bits) or ``different``
(expected for backends that do not honour seeds).

Reproducing pays the provider again, so it is paid for as a generation is (a :class:`Payer`,
``brandloop.agent.budgets.OutsideRunPayer``): refused up front, nothing spent, when the
tenant's or the run's campaign's remaining budget cannot hold every image at catalog prices;
each call reserved before it is made and settled to what the provider billed.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from brandloop.artifacts import ArtifactStore, atomic_write
from brandloop.domain import Billing, ModelSpec, Receipt
from brandloop.errors import BadInputError, NotFoundError, ProviderError
from brandloop.providers import ImageProvider, ImageRequest
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings

log = logging.getLogger(__name__)

PHASH_IDENTICAL_DISTANCE: Final = 4
Verdict = Literal["byte-identical", "perceptually-identical", "different", "failed"]
#: the request a receipt's call was made with: ``(spec, receipt, idempotency_key)``. A receipt
#: records the candidate as asked (size, params with quality); the backend was sent what the
#: batching layer made of it (the nearest supported size, quality as its own field, ...)
RequestFor = Callable[[ModelSpec, Receipt, str], ImageRequest]


def _dct_matrix(n: int) -> npt.NDArray[np.float64]:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m: npt.NDArray[np.float64] = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT32: Final = _dct_matrix(32)


def perceptual_hash(png: bytes) -> int:
    """64-bit pHash: greyscale 32x32, 2-D DCT, the 8x8 lowest frequencies above their median."""
    with Image.open(io.BytesIO(png)) as image:
        grey = np.asarray(
            image.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64
        )
    coeffs = (_DCT32 @ grey @ _DCT32.T)[:8, :8].flatten()
    bits = coeffs > np.median(coeffs[1:])
    return int("".join("1" if b else "0" for b in bits), 2)


def hash_distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class Payer(Protocol):
    """What pays for a reproduction's provider calls (see the module docstring)."""

    def price(self, spec: ModelSpec, *, width: int, height: int, quality: str | None) -> float:
        """One image's catalog price: what the call reserves."""
        ...

    def admit(
        self, total_usd: float, *, campaign_id: str | None, source_run_id: str, what: str
    ) -> None:
        """Raise ``BudgetExhaustedError`` when ``total_usd`` does not fit the budgets; the
        calls are for reproducing ``source_run_id`` (the cost report counts them under it)."""
        ...

    def reserve(self, *, key: str, amount_usd: float, provider: str, model: str) -> str:
        """Hold one call's estimate: ``""``, or why it may not be made."""
        ...

    def settle(self, *, key: str, billing: Billing, charged_usd: float | None) -> float:
        """Record how the call ended; what it counts as spent."""
        ...


class ImageReproduction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str
    source_sha256: str | None
    model: str
    seed: int
    verdict: Verdict
    reproduced_sha256: str | None = None
    hash_distance: int | None = None
    cost_usd: float = 0.0
    path: str | None = None
    error: str | None = None


class Reproduction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    template: str
    images: list[ImageReproduction]
    cost_usd: float


#: why a deleted image is not reproduced (``ImageReproduction.error``)
SOURCE_DELETED = (
    "not reproduced: the image was deleted, and the raw image it was made from "
    "(source_sha256 {source}) with it - nothing to compare with; nothing paid"
)


def _receipts(
    db: Database, *, tenant: str, run_id: str
) -> tuple[str, str | None, list[Receipt], set[str]]:
    """The run's template, campaign and accepted images' receipts, and the attempt ids of
    those whose raw image is gone (:func:`_source_deleted`)."""
    with db.session() as session:
        run = crud.get_run(session, tenant=tenant, run_id=run_id)
        if run is None:
            raise NotFoundError(f"unknown run {run_id!r}")
        if run.result is None:
            raise BadInputError(f"run {run_id} has not finished (status {run.status})")
        receipts: list[Receipt] = []
        gone: set[str] = set()
        for image in run.result.get("images", []):
            artifact = crud.get_artifact(
                session, tenant=tenant, sha256=image["sha256"], with_deleted=True
            )
            if artifact is None or artifact.receipt is None:
                raise NotFoundError(f"image {image['sha256'][:12]} of {run_id} has no receipt")
            receipt = Receipt.model_validate(artifact.receipt)
            receipts.append(receipt)
            if artifact.deleted_at is not None and _source_deleted(session, tenant, receipt):
                gone.add(receipt.attempt_id)
        return run.template_ref, run.campaign_id, receipts, gone


def _source_deleted(session: Session, tenant: str, receipt: Receipt) -> bool:
    """Whether the tenant no longer holds the raw image a deleted image was made from
    (deleting an image takes its raw source with it: ``artifact_owners.release_artifact``).
    Another tenant's copy of the same bytes may still be on disk; it is not this tenant's to
    compare with."""
    source = receipt.source_sha256
    return source is None or crud.get_artifact(session, tenant=tenant, sha256=source) is None


def _all_deleted(run_id: str, receipts: list[Receipt], gone: set[str]) -> None:
    """Refuse, before anything is paid, a run whose every image was deleted with its raw
    source: a reproduction would re-render a taken-down picture and compare it with
    nothing."""
    if receipts and all(r.attempt_id in gone for r in receipts):
        raise NotFoundError(
            f"nothing of run {run_id} to reproduce: its {len(receipts)} image(s) were deleted, "
            "and the raw images they were made from with them (their receipts stay: "
            f"brandloop runs show {run_id})"
        )


async def reproduce_run(
    settings: Settings,
    db: Database,
    *,
    tenant: str,
    run_id: str,
    providers: dict[str, ImageProvider],
    models: list[ModelSpec],
    payer: Payer,
    request_for: RequestFor,
    out_dir: Path | None = None,
) -> Reproduction:
    """Re-render each accepted image of ``run_id`` from its receipt; compare with the original.

    Paid for by ``payer``: refused before the first call when the whole estimate does not fit."""
    template, campaign_id, receipts, gone = _receipts(db, tenant=tenant, run_id=run_id)
    if not receipts:
        raise BadInputError(f"run {run_id} has no accepted images to reproduce")
    _all_deleted(run_id, receipts, gone)
    store = ArtifactStore(settings.artifacts_dir)
    specs = {m.id: m for m in models}
    prices: dict[int, float] = {}
    for index, receipt in enumerate(receipts, start=1):
        spec = specs.get(receipt.model)
        if spec is not None and receipt.provider in providers and receipt.attempt_id not in gone:
            quality = receipt.params.get("quality")
            prices[index] = payer.price(
                spec,
                width=receipt.width,
                height=receipt.height,
                quality=quality if isinstance(quality, str) else None,
            )
    payer.admit(
        sum(prices.values()),
        campaign_id=campaign_id,
        source_run_id=run_id,
        what=f"reproducing {len(prices)} image(s) of {run_id}",
    )
    results: list[ImageReproduction] = []
    for index, receipt in enumerate(receipts, start=1):
        base = ImageReproduction(
            sha256=receipt.sha256 or "",
            source_sha256=receipt.source_sha256,
            model=receipt.model,
            seed=receipt.seed_requested,
            verdict="failed",
        )
        if receipt.attempt_id in gone:
            error = SOURCE_DELETED.format(source=(receipt.source_sha256 or "-")[:12])
            results.append(base.model_copy(update={"error": error}))
            continue
        spec = specs.get(receipt.model)
        provider = providers.get(receipt.provider)
        if spec is None or provider is None:
            results.append(
                base.model_copy(update={"error": f"model {receipt.model} is not available here"})
            )
            continue
        if spec.version != receipt.model_version:
            base = base.model_copy(
                update={
                    "error": f"model version is now {spec.version}, was {receipt.model_version}"
                }
            )
        request = request_for(spec, receipt, f"reproduce-{run_id}-{receipt.attempt_id}")
        key = f"{index:02d}"
        refusal = payer.reserve(
            key=key, amount_usd=prices[index], provider=receipt.provider, model=receipt.model
        )
        if refusal:
            results.append(base.model_copy(update={"error": f"not sent: {refusal}"}))
            continue
        try:
            answer = await provider.generate(request)
        except ProviderError as exc:
            billing: Billing = getattr(exc, "billing", "not_billed")
            cost = payer.settle(
                key=key, billing=billing, charged_usd=getattr(exc, "charged_usd", None)
            )
            results.append(
                base.model_copy(update={"error": f"{type(exc).__name__}: {exc}", "cost_usd": cost})
            )
            continue
        except BaseException:  # cancelled mid-call: it may have been billed
            payer.settle(key=key, billing="unknown", charged_usd=None)
            raise
        cost = payer.settle(
            key=key,
            billing="billed" if answer.cost_usd > 0 else "not_billed",
            charged_usd=answer.cost_usd,
        )
        if not answer.images:
            results.append(
                base.model_copy(
                    update={"error": "the provider returned no image", "cost_usd": cost}
                )
            )
            continue
        data = answer.images[0].data
        digest = hashlib.sha256(data).hexdigest()
        path: str | None = None
        if out_dir is not None:
            target = out_dir / f"{index:02d}-{digest[:12]}.png"
            atomic_write(target, data)
            path = str(target)
        original = (
            store.get(receipt.source_sha256)
            if receipt.source_sha256 and store.exists(receipt.source_sha256)
            else None
        )
        update: dict[str, Any] = {
            "reproduced_sha256": digest,
            "cost_usd": cost,
            "path": path,
        }
        if digest == receipt.source_sha256:  # the receipt's hash decides: no file is needed
            update |= {"verdict": "byte-identical", "hash_distance": 0}
            if original is None:  # lost from the store: these are its very bytes, kept again
                store.write(data)
        elif original is None:
            update["error"] = (
                "the original raw image is no longer in the artifact store, and the re-render "
                "differs from its bytes: not compared"
            )
        else:
            distance = hash_distance(perceptual_hash(original), perceptual_hash(data))
            identical = distance <= PHASH_IDENTICAL_DISTANCE
            update |= {
                "verdict": "perceptually-identical" if identical else "different",
                "hash_distance": distance,
            }
        results.append(base.model_copy(update=update))
        log.info(
            "image reproduced",
            extra={"run_id": run_id, "sha256": receipt.sha256, "verdict": update.get("verdict")},
        )
    with db.session() as session:
        crud.audit(
            session,
            tenant=tenant,
            actor="cli",
            action="run.reproduced",
            subject_type="run",
            subject_id=run_id,
            detail={
                "verdicts": [r.verdict for r in results],
                "cost_usd": round(sum(r.cost_usd for r in results), 6),
            },
        )
    return Reproduction(
        run_id=run_id,
        template=template,
        images=results,
        cost_usd=round(sum(r.cost_usd for r in results), 6),
    )
