"""The model catalog: the shipped YAML, prices, size fitting, and which models this process can
call. The registry keeps the merged catalog (``crud.sync_catalog``); the planner reads it here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

from pydantic import ValidationError

from brandloop.domain import ASPECT_PATTERN, ModelSpec, parse_size
from brandloop.errors import BadInputError, NotFoundError
from brandloop.policy_files import describe_validation_error, read_policy_yaml
from brandloop.providers import PREVIEW_PROVIDER
from brandloop.settings import Settings
from brandloop.views import ModelView

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
TIER_ORDER = {"draft": 0, "standard": 1, "premium": 2}


def load_catalog(path: Path = CATALOG_PATH) -> list[ModelSpec]:
    """The models of a catalog file; a file that cannot be read, is not YAML or does not fit
    is one :class:`BadInputError` naming it (a deployment's catalog is its own file)."""
    try:
        data = read_policy_yaml(path, what="catalog")
    except OSError as exc:
        raise BadInputError(f"cannot read catalog {path}: {exc.strerror or exc}") from None
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise BadInputError(f"catalog {path}: expected a mapping with a 'models' list")
    specs = []
    for index, entry in enumerate(entries):
        try:
            specs.append(ModelSpec.model_validate(entry))
        except ValidationError as exc:
            raise BadInputError(
                f"catalog {path}: {describe_validation_error(exc, within=f'models.{index}')}"
            ) from None
    ids = [s.id for s in specs]
    if len(ids) != len(set(ids)):
        raise BadInputError(f"catalog {path} names a model twice")
    return specs


def catalog_path(settings: Settings) -> Path:
    """The catalog this deployment uses: ``BRANDLOOP_CATALOG_PATH``, else ``catalog.yaml`` in
    the data dir when there is one, else the shipped catalog."""
    if settings.catalog_path is not None:
        return settings.catalog_path
    local = settings.data_dir / "catalog.yaml"
    return local if local.is_file() else CATALOG_PATH


def configured_providers(settings: Settings) -> set[str]:
    """Providers this process has credentials or a base URL for; procedural always."""
    providers = {"procedural"}
    if settings.openai_api_key is not None:
        providers.add("openai")
    if settings.stability_api_key is not None:
        providers.add("stability")
    if settings.a1111_base_url:
        providers.add("a1111")
    if settings.comfyui_base_url:
        providers.add("comfyui")
    return providers


def allowed_providers(
    settings: Settings,
    *,
    requested: Sequence[str] | None = None,
    brand: Sequence[str] | None = None,
    allow_preview: bool = False,
    requested_as: str = "providers",
) -> set[str]:
    """The providers a run may plan with: configured ones, narrowed by the request's and the
    brand's allow-lists; the preview renderer only when it is the only one configured, when an
    allow-list names it, or when previews are allowed.

    Raises ``NotFoundError`` for a request's allow-list naming a provider that is not
    configured here (as for an unknown brand or model), ``BadInputError`` for the brand's. The
    message names the request's allow-list as ``requested_as``: the API's field by default,
    the CLI passes its flag.
    """
    configured = configured_providers(settings)
    allowed = set(configured)
    for source, names in ((requested_as, requested), ("the brand policy", brand)):
        if names is None:
            continue
        unknown = sorted(set(names) - configured)
        if unknown:
            raise (NotFoundError if names is requested else BadInputError)(
                f"{source} names provider(s) {', '.join(unknown)} that are not configured "
                f"here (configured: {', '.join(sorted(configured))})"
            )
        allowed &= set(names)
    named = set(requested or ()) | set(brand or ())
    real = allowed - {PREVIEW_PROVIDER}
    if real and PREVIEW_PROVIDER not in named and not (allow_preview or settings.allow_preview):
        allowed.discard(PREVIEW_PROVIDER)
    return allowed


def plannable(
    models: list[ModelSpec], settings: Settings, providers: set[str] | None = None
) -> list[ModelSpec]:
    """Models the planner may use: not retired, from an allowed provider (default: every
    configured one but the preview renderer when a real one is configured), cheapest first."""
    allowed = providers if providers is not None else allowed_providers(settings)
    usable = [m for m in models if m.status != "retired" and m.provider in allowed]
    return sorted(usable, key=lambda m: (TIER_ORDER[m.tier], m.price_per_image_usd))


def unusable_reason(model: ModelSpec, configured: set[str], allowed: set[str]) -> str | None:
    """Why the planner will not use ``model`` here by default, or None (see ``plannable``)."""
    if model.status == "retired":
        return "retired"
    if model.provider not in configured:
        return f"{model.provider} not configured"
    if model.provider not in allowed:
        return "preview renderer: only with --allow-preview while a real provider is configured"
    return None


def model_views(models: list[ModelSpec], settings: Settings) -> list[ModelView]:
    """Each model with whether this deployment can use it: ``models list`` and ``/v1/models``."""
    configured, allowed = configured_providers(settings), allowed_providers(settings)
    views = []
    for model in models:
        reason = unusable_reason(model, configured, allowed)
        views.append(ModelView(**model.model_dump(), usable=reason is None, unusable_reason=reason))
    return views


# --------------------------------------------------------------------------- prices


def image_price(spec: ModelSpec, *, width: int, height: int, quality: str | None = None) -> float:
    """USD for one image of ``width`` x ``height`` as the call is sent: at the size the model
    is asked for (:func:`nearest_size`, as ``build_request`` fits it: a size the model does not
    list is made, and billed, at the nearest it does) and the quality (the model's default when
    none). The most specific entry of the price table, else the flat price.

    Every figure that prices a call - the plan, the generate node's reservation floor, a
    replayed candidate, a reproduction, the observe node's quality outlook - comes from here, so
    what is planned and reserved is what the call costs."""
    quality = quality or spec.default_quality
    width, height = nearest_size(spec, width, height)
    size = f"{width}x{height}"
    for key in (f"{size}/{quality}", size, str(quality), "*"):
        if key in spec.prices:
            return spec.prices[key]
    return spec.price_per_image_usd


def _token_count(value: Any) -> TypeGuard[int]:
    """A count of tokens as a backend may report one: a whole number, not negative (a bool is
    not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def usage_cost(spec: ModelSpec, usage: Mapping[str, Any]) -> float | None:
    """USD from a token-billed backend's ``usage`` (OpenAI's shape), or None when the usage
    or the catalog's token prices are missing, or a count is not one (negative, a bool)."""
    rates = spec.usage_prices_per_mtok
    output = usage.get("output_tokens")
    if not rates or not _token_count(output):
        return None
    details = usage.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    text_in = details.get("text_tokens", usage.get("input_tokens", 0))
    image_in = details.get("image_tokens", 0)
    if not _token_count(text_in) or not _token_count(image_in):
        return None
    total: float = (
        text_in * rates.get("text_input", 0.0)
        + image_in * rates.get("image_input", 0.0)
        + output * rates.get("image_output", 0.0)
    )
    return round(total / 1_000_000, 6)


# --------------------------------------------------------------------------- sizes


def _ratio(width: int, height: int) -> float:
    return math.log(width / height)


def nearest_size(spec: ModelSpec, width: int, height: int) -> tuple[int, int]:
    """The supported size closest in shape, then in area, to ``width`` x ``height``;
    the size itself when the model takes any size."""
    if not spec.sizes or f"{width}x{height}" in spec.sizes:
        return width, height
    options = [parse_size(s) for s in spec.sizes]
    target = _ratio(width, height)
    return min(
        options,
        key=lambda wh: (
            round(abs(_ratio(*wh) - target), 3),
            abs(math.log(wh[0] * wh[1] / (width * height))),
        ),
    )


def nearest_aspect(spec: ModelSpec, width: int, height: int) -> str | None:
    """The supported aspect ratio closest to ``width``:``height``; None when the model takes
    pixel sizes."""
    if not spec.aspect_ratios:
        return None
    target = _ratio(width, height)

    def distance(ratio: str) -> float:
        match = ASPECT_PATTERN.fullmatch(ratio)
        if match is None:
            raise ValueError(f"{spec.id}: {ratio!r} is not an aspect ratio")
        return abs(_ratio(int(match.group(1)), int(match.group(2))) - target)

    return min(spec.aspect_ratios, key=distance)
