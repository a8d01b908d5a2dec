"""From planned candidates to backend requests: batching candidates that differ only in seed
into one call where a backend makes several images per call, and fitting each request to what
the model supports (nearest size or aspect ratio, negative prompt, prompt length).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

from brandloop.domain import MAX_SEED, Candidate, ModelSpec, Receipt
from brandloop.policies.catalog import nearest_aspect, nearest_size
from brandloop.providers import ImageRequest


def _same_but_seed(candidate: Candidate) -> str:
    return json.dumps(
        [
            candidate.model,
            candidate.template,
            candidate.prompt,
            candidate.negative_prompt,
            candidate.width,
            candidate.height,
            candidate.params,
        ],
        sort_keys=True,
        default=str,
    )


def batch_candidates(
    candidates: Sequence[Candidate], spec_of: Callable[[str], ModelSpec]
) -> list[list[Candidate]]:
    """Group candidates into calls. Candidates join one call when they differ only in seed, the
    model makes several images per call, and - when it honours seeds - their seeds follow one
    another (backends number a batch's seeds ``seed, seed+1, ...``). Order is kept."""
    batches: list[list[Candidate]] = []
    open_batch: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        spec = spec_of(candidate.model)
        key = _same_but_seed(candidate)
        current = open_batch.get(key)
        if (
            current is not None
            and len(current) < spec.max_images_per_call
            and (not spec.supports_seed or candidate.seed == current[-1].seed + 1 <= MAX_SEED)
        ):
            current.append(candidate)
            continue
        batch = [candidate]
        batches.append(batch)
        open_batch[key] = batch
    return batches


def batch_key(keys: Sequence[str]) -> str:
    """The idempotency key of one call: the candidate's own, or one derived from all of them."""
    if len(keys) == 1:
        return keys[0]
    return "bl-b-" + hashlib.sha256("|".join(keys).encode()).hexdigest()[:40]


#: Candidate params recorded on the attempt and the receipt but never sent to a backend: the
#: LLM writer a prompt came from (``writer: {provider, model}``) is provenance, and a real
#: OpenAI endpoint refuses a body with an unknown ``writer`` field.
PROVENANCE_PARAMS = frozenset({"writer"})


def build_request(
    spec: ModelSpec, batch: Sequence[Candidate], *, idempotency_key: str
) -> ImageRequest:
    """The backend request for a batch: the nearest supported size (the image is post-processed
    to the asked size afterwards), the negative prompt folded into the prompt where the model
    has none, the prompt cut to the model's limit."""
    first = batch[0]
    width, height = nearest_size(spec, first.width, first.height)
    prompt, negative = first.prompt, first.negative_prompt
    if negative and not spec.supports_negative_prompt:
        prompt, negative = f"{prompt}\nAvoid: {negative}", ""
    # what a backend is sent: the candidate's params without those kept only as provenance
    params = {k: v for k, v in first.params.items() if k not in PROVENANCE_PARAMS}
    quality = params.pop("quality", None)
    return ImageRequest(
        model=spec.model,
        prompt=prompt[: spec.max_prompt_chars],
        negative_prompt=negative,
        seed=first.seed if spec.supports_seed else None,
        width=width,
        height=height,
        aspect_ratio=nearest_aspect(spec, first.width, first.height),
        count=len(batch),
        quality=str(quality) if quality is not None else None,
        params=params,
        idempotency_key=idempotency_key,
    )


def receipt_request(spec: ModelSpec, receipt: Receipt, idempotency_key: str) -> ImageRequest:
    """The request a receipt's image was made with, made again (``brandloop runs reproduce``):
    the receipt records the candidate as asked, and :func:`build_request` makes of it what was
    sent - the nearest supported size, quality as its own field, the prompt as cut."""
    candidate = Candidate(
        id=receipt.attempt_id,
        template=receipt.template,
        prompt=receipt.prompt,
        negative_prompt=receipt.negative_prompt,
        model=receipt.model,
        seed=receipt.seed_requested,
        width=receipt.width,
        height=receipt.height,
        params=dict(receipt.params),
    )
    return build_request(spec, [candidate], idempotency_key=idempotency_key)
