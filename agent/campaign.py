"""Campaigns: several assets (brief, formats, count) for one brand, sharing memory and a budget.

Assets run one after another so each later one recalls what the earlier ones established;
the report gives per-asset results and how consistent the whole set looks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from brandloop.agent.budgets import limit_of, tighten_budget
from brandloop.agent.consistency import consistency
from brandloop.agent.context import EventSink
from brandloop.agent.nodes.intake import redacted_text
from brandloop.agent.runner import check_request, new_run_id, run_generation
from brandloop.artifacts import ArtifactStore
from brandloop.domain import (
    FORMAT_TEXT,
    MAX_ASSET_COUNT,
    MAX_ASSET_FORMATS,
    MAX_BRIEF_CHARS,
    MAX_REQUEST_BUDGET_USD,
    MAX_SEED,
    AcceptedImage,
    GenerationRequest,
    RunResult,
    StopCause,
    campaign_id_problem,
    is_blank,
    parse_size,
    repeated_format,
    size_for_aspect,
)
from brandloop.errors import BadInputError, ConflictError, NotFoundError
from brandloop.policies.brandkit import load_brand_kit
from brandloop.policy_files import (
    describe_validation_error,
    field_path,
    one_line,
    parse_yaml,
    yaml_error,
)
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.registry.types import MAX_MONEY_USD
from brandloop.settings import Settings
from brandloop.tools.moderation.minors import AGENT_ACTOR, refuse_at_the_door

log = logging.getLogger(__name__)

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,79}$")
_FORMAT = re.compile(FORMAT_TEXT)


class _Spec(BaseModel):
    """Strict as ``POST /v1/campaigns``'s body: no unknown field, and no text for a number or
    a flag (``budget_usd: "1.5"``, ``seed: "7"`` and ``budget_usd: true`` are refused, as the
    API refuses them with a 422; a budget in a string once ran)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


def _format(value: str) -> str:
    """A size or an aspect ratio, exactly as ``POST /v1/campaigns`` takes one (the schema's
    pattern), told in the words of :func:`parse_size` / :func:`size_for_aspect` when it is not."""
    if _FORMAT.fullmatch(value):
        return value
    try:
        (size_for_aspect if ":" in value else parse_size)(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    raise ValueError(
        f"format {value!r} is neither WIDTHxHEIGHT (each side 64..4096) nor W:H (each part "
        "1..999), in ASCII digits without a leading zero or blanks, e.g. 1024x640 or 16:9"
    )


def _brief(value: str) -> str:
    """A brief as every entry point takes it (``GenerationRequest``'s rule, the API's)."""
    if is_blank(value):
        raise ValueError("brief is empty")
    if len(value) > MAX_BRIEF_CHARS:
        raise ValueError(f"brief is {len(value)} characters; the limit is {MAX_BRIEF_CHARS}")
    return value


def _whole(value: Any) -> Any:
    """A count as ``POST /v1/campaigns`` takes one: a number without a fraction (``2`` or
    ``2.0``), never ``true`` or ``"2"``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: How many accepted images an asset wants per format: 1-8, a whole number
Count = Annotated[int, Field(ge=1, le=MAX_ASSET_COUNT, strict=True), BeforeValidator(_whole)]
#: A format of an asset: ``WIDTHxHEIGHT`` or ``W:H`` (``POST /v1/campaigns``'s formats)
Format = Annotated[str, AfterValidator(_format)]
Formats = Annotated[list[Format], Field(min_length=1, max_length=MAX_ASSET_FORMATS)]
Brief = Annotated[str, AfterValidator(_brief)]


class AssetDefaults(_Spec):
    formats: Formats = Field(default_factory=lambda: ["1024x1024"])
    count: Count = 1
    budget_usd: float | None = Field(default=None, gt=0, le=MAX_REQUEST_BUDGET_USD)


class AssetSpec(_Spec):
    id: str = Field(pattern=_ID.pattern)
    brief: Brief
    formats: Formats | None = None
    count: Count | None = None
    budget_usd: float | None = Field(default=None, gt=0, le=MAX_REQUEST_BUDGET_USD)


class CampaignSpec(_Spec):
    #: 1-80 characters: a run without --campaign-id gets the id NAME-YYYYMMDDHHMMSS, within
    #: a campaign id's 120
    name: str
    brand: str
    budget_usd: float | None = Field(default=None, gt=0, le=MAX_MONEY_USD)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    template: str | None = None
    defaults: AssetDefaults = Field(default_factory=AssetDefaults)
    assets: list[AssetSpec] = Field(min_length=1, max_length=50)

    @field_validator("name")
    @classmethod
    def _name_in_plain_words(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError(
                "a campaign name is 1-80 lower-case letters, digits, '_', '.' and '-', "
                "starting with a letter or digit"
            )
        return value


class AssetResult(BaseModel):
    asset: str
    size: str
    run_id: str
    status: str
    accepted: int
    wanted: int
    cost_usd: float
    #: the accepted images as ``generate --json`` gives them (path, model, seed, prompt,
    #: scores, cost, ``preview``, ...)
    images: list[AcceptedImage]
    reason: str = ""
    #: why the asset's run stopped short, when it did (``budget``, ``iterations``, ...): the
    #: CLI's exit code of a campaign that accepted nothing follows it
    stop_cause: StopCause | None = None

    @property
    def previews(self) -> int:
        """How many of the accepted images the procedural preview renderer made."""
        return sum(1 for image in self.images if image.preview)


class CampaignReport(BaseModel):
    campaign_id: str
    brand: str
    budget_usd: float | None
    cost_usd: float
    accepted: int
    wanted: int
    #: spreads (lower is more consistent); None, "not measured", with fewer than two images,
    #: and while any asset waits for review (it has delivered nothing yet)
    palette_spread: float | None
    descriptor_spread: float | None
    memory: bool
    assets: list[AssetResult]
    #: assets whose runs wait for a reviewer's verdict (``brandloop review approve|reject``)
    awaiting_review: int = 0


def load_campaign(path: Path) -> CampaignSpec:
    """The campaign file at ``path``, every field of every asset checked as ``POST
    /v1/campaigns`` checks its body (a brief that says something, without a NUL or a lone
    surrogate; formats that are sizes or aspect ratios, each once, 1-8 of them; a count of
    1-8), so a bad asset is refused before the first one runs: one line naming the file and
    the field, e.g. ``campaign c.yaml: assets[1].brief: brief is empty``."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise yaml_error(f"campaign {path}", exc) from None
    except FileNotFoundError:
        raise NotFoundError(f"no campaign file {path}") from None
    except OSError as exc:  # a folder, say: named as `templates create --file` names one
        raise BadInputError(f"cannot read campaign file {path}: {exc.strerror or exc}") from None
    data = parse_yaml(text, source=f"campaign {path}")
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        message = one_line(str(first["msg"]).removeprefix("Value error, "))
        raise BadInputError(
            f"campaign {path}: {field_path(tuple(first['loc']))}: {message}{more}"
        ) from None
    seen: dict[str, int] = {}
    for number, asset in enumerate(spec.assets, start=1):
        if asset.id in seen:  # two rows of one id in the report: which is which?
            raise BadInputError(
                f"{path}: asset id {asset.id!r} is used twice (assets {seen[asset.id]} and "
                f"{number}); each asset needs its own id"
            )
        seen[asset.id] = number
        formats = asset.formats or spec.defaults.formats
        twice = repeated_format(formats)
        if twice is not None:
            raise BadInputError(
                f"{path}: asset {asset.id}: a format is listed twice ({twice}); list each once"
            )
    return spec


def kit_path(spec: CampaignSpec, base: Path) -> Path | None:
    """The brand kit file the campaign names (relative to the campaign file's folder ``base``),
    or None when it names a stored brand."""
    return (base / spec.brand).resolve() if spec.brand.endswith((".yaml", ".yml")) else None


def resolve_brand(spec: CampaignSpec, base: Path, *, db: Database, tenant: str) -> str:
    """The campaign's brand name. A kit path (relative to the campaign file) names the brand
    of its ``name``, as ``generate --brand FILE`` does: a brand not stored yet is added from
    it, a stored one whose kit is the file's is used, and one whose kit differs is refused
    (:class:`ConflictError`): the file never replaces a stored kit (it once did, silently),
    ``brandloop brands add FILE`` does."""
    candidate = kit_path(spec, base)
    with db.session() as session:
        if candidate is not None:
            kit = load_brand_kit(candidate)
            row = crud.get_brand(session, tenant=tenant, ref=kit.name)
            if row is None:
                return crud.upsert_brand(session, tenant=tenant, kit=kit).name
            if not crud.same_kit(row, kit):
                raise ConflictError(
                    f"brand: {spec.brand} differs from the stored kit of brand {row.name!r}; "
                    f"it was not used: `brandloop brands add {candidate}` replaces the stored "
                    f"kit, or name the brand ({row.name!r}) in the campaign file"
                )
            return row.name
        if crud.get_brand(session, tenant=tenant, ref=spec.brand) is None:
            raise NotFoundError(f"unknown brand {spec.brand!r}")
        return spec.brand


def plan_campaign(
    spec: CampaignSpec,
    *,
    brand: str,
    db: Database,
    tenant: str,
    campaign_id: str,
    actor: str = AGENT_ACTOR,
) -> list[tuple[AssetSpec, str, GenerationRequest, str]]:
    """Every run of the campaign (asset, format, request, run id), each request checked as its
    run will check it (``check_request``: the brand, the template this run gets and its
    rendering), before the first one runs or anything is stored, as ``POST /v1/campaigns``
    checks every asset before it stores a job. An asset whose brief, or its render, crosses
    the minors line refuses the whole campaign (:class:`RefusedError`), audited as ``actor``'s.

    Every request is bound to the brand's id now, as the campaign starts: each asset's run
    finds the kit by it, so a rename during the campaign - and another brand taking the old
    name - never runs the later assets under that other brand's kit."""
    with db.session() as session:
        row = crud.get_brand(session, tenant=tenant, ref=brand)
        if row is None:
            raise NotFoundError(f"unknown brand {brand!r}")
        bound = {"brand": row.name, "brand_id": row.id}
    planned = []
    for index, asset in enumerate(spec.assets):
        for fmt in asset.formats or spec.defaults.formats:
            try:
                request = GenerationRequest(
                    brief=asset.brief,
                    **bound,
                    count=asset.count or spec.defaults.count,
                    budget_usd=asset.budget_usd or spec.defaults.budget_usd,
                    seed=None if spec.seed is None else (spec.seed + index) % (MAX_SEED + 1),
                    template=spec.template,
                    campaign_id=campaign_id,
                    tenant=tenant,
                    **({"aspect_ratio": fmt} if ":" in fmt else {"size": fmt}),
                )
            except ValidationError as exc:
                raise BadInputError(
                    f"campaign {spec.name}: assets[{index}] ({asset.id}): "
                    f"{describe_validation_error(exc)}"
                ) from None
            run_id = new_run_id()
            prompt = check_request(db, request, run_id=run_id)
            brief = redacted_text(request.brief)
            with db.session() as session:
                refuse_at_the_door(
                    session,
                    tenant=tenant,
                    actor=actor,
                    subject_type="campaign",
                    subject_id=campaign_id,
                    texts=(("brief", brief), ("prompt", prompt or brief)),
                )
            planned.append((asset, fmt, request, run_id))
    return planned


async def run_campaign(
    spec: CampaignSpec,
    *,
    brand: str,
    settings: Settings,
    db: Database,
    tenant: str = "default",
    campaign_id: str | None = None,
    use_memory: bool = True,
    on_event: EventSink | None = None,
    on_asset: Callable[[AssetResult], Any] | None = None,
    run_kwargs: dict[str, Any] | None = None,
    actor: str = AGENT_ACTOR,
) -> CampaignReport:
    """Run every asset of ``spec`` in order under ``campaign_id``'s budget.

    The file's ``budget_usd`` tightens the campaign's limit and never loosens one already set
    (``brandloop campaign budget``, an earlier run): the tighter applies and the report's
    ``budget_usd`` says which. Every asset is checked before the first runs
    (:func:`plan_campaign`): one crossing the minors line refuses the campaign, nothing run."""
    campaign_id = campaign_id or f"{spec.name}-{datetime.now(UTC):%Y%m%d%H%M%S}"
    if problem := campaign_id_problem(campaign_id):
        raise BadInputError(problem)
    planned = plan_campaign(
        spec, brand=brand, db=db, tenant=tenant, campaign_id=campaign_id, actor=actor
    )
    with db.session() as session:
        if spec.budget_usd is not None:
            budget_usd: float | None = tighten_budget(
                session,
                tenant=tenant,
                scope="campaign",
                scope_id=campaign_id,
                limit_usd=spec.budget_usd,
            )
        else:
            budget_usd = limit_of(session, tenant=tenant, scope="campaign", scope_id=campaign_id)
    results: list[AssetResult] = []
    accepted_images: list[bytes] = []
    store = ArtifactStore(settings.artifacts_dir)
    kit = None
    for asset, size, request, run_id in planned:
        log.info("campaign asset", extra={"campaign_id": campaign_id, "asset": asset.id})
        result: RunResult = await run_generation(
            request,
            settings=settings,
            db=db,
            run_id=run_id,
            on_event=on_event,
            use_memory=use_memory,
            **(run_kwargs or {}),
        )
        row = AssetResult(
            asset=asset.id,
            size=size,
            run_id=result.run_id,
            status=result.status,
            accepted=len(result.images),
            wanted=request.count,
            cost_usd=result.cost_usd,
            images=list(result.images),
            reason=result.reason,
            stop_cause=result.stop_cause,
        )
        results.append(row)
        for image in result.images:
            accepted_images.append(store.get(image.sha256))
        if on_asset is not None:
            on_asset(row)
    with db.session() as session:
        # the brand the assets ran under (by id), by its name now
        brand_row = crud.request_brand(session, planned[0][2])
        if brand_row is None:
            raise NotFoundError(f"brand {brand!r} was removed during the campaign")
        kit = crud.brand_kit(brand_row)
    # an asset waiting for review has delivered nothing yet: a figure over the others would
    # read as the campaign's (``GET /v1/campaigns/{id}`` measures it once the last review ends)
    waiting = sum(r.status == "awaiting_review" for r in results)
    spread = consistency([] if waiting else accepted_images, kit)
    return CampaignReport(
        campaign_id=campaign_id,
        brand=kit.name,
        budget_usd=budget_usd,
        cost_usd=round(sum(r.cost_usd for r in results), 6),
        accepted=sum(r.accepted for r in results),
        wanted=sum(r.wanted for r in results),
        palette_spread=spread.palette_spread,
        descriptor_spread=spread.descriptor_spread,
        memory=use_memory,
        assets=results,
        awaiting_review=waiting,
    )
