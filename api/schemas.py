"""What the HTTP API accepts and answers, apart from the domain models it shares with the CLI
(``BrandKit``, ``RunResult``, ``ModelSpec``, ``PromptTemplate``...)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Body
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from brandloop import domain
from brandloop.agent.nodes.intake import redacted_brief
from brandloop.agent.revision import BriefEdit
from brandloop.api.params import ASPECT_PATTERN, FORMAT_PATTERN, SIZE_PATTERN, TEMPLATE_REF
from brandloop.domain import (
    MAX_ASSET_COUNT,
    MAX_ASSET_FORMATS,
    MAX_BRIEF_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_NOTE_CHARS,
    MAX_REVIEW_NOTE_CHARS,
    MAX_SEED,
    PROVIDER_NAME,
    GenerationRequest,
    ImageFormat,
    RunResult,
    RunStatus,
    is_blank,
)
from brandloop.errors import BadInputError
from brandloop.templates.governance import (
    MAX_PARAM_TEXT_CHARS,
    MODEL_HINT_PATTERN,
    PARAM_NAME,
    PRINCIPAL_NAME,
    RESERVED_PARAMS,
)
from brandloop.templates.sandbox import MAX_TEMPLATE_CHARS

JobState = Literal["queued", "running", "awaiting_review", "succeeded", "failed", "cancelled"]


class _In(BaseModel):
    """A request body: strict types (no ``true`` for a number, no ``"3"`` for an integer)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _whole(value: Any) -> Any:
    """``2.0`` is the integer 2, as JSON Schema counts it (``type: integer`` takes any number
    whose fraction is zero); ``2.5``, ``true`` and ``"2"`` stay what they are and are refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: An integer in a request body: a JSON number without a fraction (``3`` or ``3.0``), never a
#: boolean or a string (``WHOLE`` goes after an optional integer's bounds)
WHOLE = BeforeValidator(_whole)
BodyInt = Annotated[int, WHOLE]
#: Characters that are blank, and text that must say something (at least one character that is
#: not blank; the schema's pattern, searched anywhere in the text): ``brandloop.domain``'s rule,
#: the one the CLI and the agent apply
BLANKS = domain.BLANKS
NOT_BLANK = domain.NOT_BLANK


def not_blank(what: str) -> Any:
    """A validator refusing blank text with the CLI's words ("note is empty"), not the
    pattern's regex (invisible characters in a problem's detail); put the pattern in the
    schema with ``json_schema_extra={"pattern": NOT_BLANK}``."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and is_blank(value):
            raise PydanticCustomError("blank", f"{what} is empty")
        return value

    return BeforeValidator(check)


def _absent_when_blank(value: str) -> str:
    """Optional text that shows nothing (only :data:`BLANKS`: spaces, zero-width characters,
    bidi controls) is no text: ``""``, as when it is left out. Kept as given, a title or name of
    ``"\u200b"`` was listed as an empty link no one could see or click."""
    return "" if is_blank(value) else value


#: an optional name or title: blank text is taken as left out (``""``)
BLANK_IS_ABSENT = AfterValidator(_absent_when_blank)


def _one_shape(examples: list[dict[str, Any]]) -> dict[str, Any]:
    """A body with a shape: examples, and the rule that ``size`` and ``aspect_ratio`` are not
    both given (either, or neither: the brand's default format), stated in the schema."""
    return {
        "examples": examples,
        "not": {
            "required": ["size", "aspect_ratio"],
            "properties": {"size": {"type": "string"}, "aspect_ratio": {"type": "string"}},
        },
    }


def body_error(field: tuple[str | int, ...], message: str) -> RequestValidationError:
    """A 422 ``validation`` problem naming ``field`` of the body, as the schema's own are.
    ``message`` is brandloop's own plain words, never the input: the studio shows it as it is
    (``ctx.plain``, ``api/studio/wording.py``)."""
    return RequestValidationError(
        [
            {
                "loc": ["body", *map(str, field)],
                "msg": f"Value error, {message}",
                "type": "value_error",
                "ctx": {"plain": message},
            }
        ]
    )


def redacted_field(text: str, *field: str | int) -> str:
    """``text`` (a brief, or a message that becomes one) with its personal data redacted, as
    it is stored and run; a 422 naming ``field`` when the markers take it past the limit."""
    try:
        return redacted_brief(text, what=str(field[-1]))
    except BadInputError as exc:
        raise body_error(field, str(exc)) from None


def domain_request(**fields: Any) -> GenerationRequest:
    """Build the agent's request; its own validation errors answer 422 like any other."""
    try:
        return GenerationRequest(**fields)
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {"loc": ["body", *map(str, e["loc"])], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors()
            ]
        ) from None


class _Form(_In):
    """What a request asks for besides its brief and how many images: which shape (a size or
    an aspect ratio, not both), budget, seed and file format."""

    model_config = ConfigDict(json_schema_extra=_one_shape([]))

    size: str | None = Field(
        default=None,
        max_length=20,
        pattern=SIZE_PATTERN,
        description="WIDTHxHEIGHT, each side 64..4096 pixels, e.g. 1024x640",
    )
    aspect_ratio: str | None = Field(
        default=None,
        max_length=10,
        pattern=ASPECT_PATTERN,
        description="W:H, each part 1..999, e.g. 16:9; a ratio past 4:1 is made at 4:1",
    )
    budget_usd: float | None = Field(default=None, gt=0, le=10_000, allow_inf_nan=False)
    # bounds inside the optional type and before the check, so that the schema states them
    seed: Annotated[int, Field(ge=0, le=MAX_SEED), WHOLE] | None = None
    output_format: ImageFormat | None = Field(
        default=None,
        description="file format of the accepted images (png, jpeg, webp); default: the model's",
    )


def _no_default(schema: dict[str, Any]) -> None:
    """Leave the default out of a field's schema, where leaving the field out means more than
    one value (the description says what)."""
    schema.pop("default", None)


class Shape(_Form):
    """What a request asks for besides its brief: how many images, which shape (a size or an
    aspect ratio, not both), budget, seed and file format."""

    count: BodyInt = Field(
        default=1, ge=1, le=16, description="how many accepted images are wanted"
    )


SHAPE_FIELDS = frozenset(Shape.model_fields)


class _Choices(_In):
    """Which template, model and providers a request's run may use. A follow-up (a thread's
    message, or a generation with a ``thread_id``) takes them for its own turn, checked as a
    generation's are: they were once dropped there, so an allow-list did not hold."""

    template: str | None = Field(
        default=None,
        max_length=160,
        pattern=TEMPLATE_REF,
        description="name, name@VERSION or name:LABEL (default: brand-hero:production)",
        examples=["brand-hero:production"],
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        pattern=NOT_BLANK,
        examples=["procedural/studio"],
    )
    providers: list[Annotated[str, Field(pattern=PROVIDER_NAME.pattern)]] | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description='only these providers (an allow-list), e.g. ["openai"]; none: any',
    )
    allow_preview: bool = Field(
        default=False,
        description="allow the procedural preview renderer beside configured real providers",
    )


CHOICE_FIELDS = frozenset(_Choices.model_fields)


class GenerationCreate(Shape, _Choices):
    """A creative request. Only ``brief`` and ``brand`` are required."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_one_shape(
            [
                {
                    "brief": "a hero banner for the autumn sale, warm, on-brand",
                    "brand": "Acme Coffee",
                    "count": 2,
                    "size": "1024x640",
                    "budget_usd": 0.2,
                }
            ]
        ),
    )

    #: no ``default`` in the schema: left out, a follow-up (``thread_id``) keeps the previous
    #: turn's count, so a client generated from the schema must be able to leave it out
    count: BodyInt = Field(
        default=1,
        ge=1,
        le=16,
        description="how many accepted images are wanted; left out: 1, or with a `thread_id` "
        "the previous turn's count",
        json_schema_extra=_no_default,
    )
    brief: str = Field(min_length=1, max_length=MAX_BRIEF_CHARS, pattern=NOT_BLANK)
    brand: str = Field(min_length=1, max_length=120, description="brand id or name")
    thread_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=NOT_BLANK,
        description="continue this chat thread (as a follow-up message)",
    )


class Links(BaseModel):
    self: str
    events: str
    cancel: str
    run: str


class JobError(BaseModel):
    """Why a job failed: a problem kind and status, or the run's own status and reason."""

    type: str = Field(
        description="a problem kind (docs/http-api.md, Errors), such as `budget-exhausted`, "
        "`providers-unavailable`, `signing-failed` or `storage-failed` (the run is kept: the "
        "detail names `POST /v1/runs/{id}/resume`), or the run's own status (`refused`, "
        "`failed`)",
        examples=["budget-exhausted", "refused", "storage-failed"],
    )
    status: int
    detail: str


class JobPublic(BaseModel):
    """A job: one agent run, queued, running or finished, with its result when done."""

    id: str
    kind: str
    state: JobState
    run_id: str
    campaign_id: str | None = None
    thread_id: str | None = None
    cost_usd: float = Field(
        default=0.0,
        description="what the job's run has cost; while the job has not finished, so far (as "
        "GET /v1/runs/{id} shows its run)",
    )
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: RunResult | None = None
    error: JobError | None = None
    links: Links


#: a thread's shape field (even ``null``) is its first message's: the body has a message
_NEEDS_MESSAGE = {"required": ["message"], "properties": {"message": {"type": "string"}}}


class ThreadCreate(Shape):
    """A thread, and its first message: the shape (count, size...) is that message's, so it
    needs one (a 422 without it, or with ``"message": null``; ``dependentSchemas`` in the
    schema)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_one_shape(
            [
                {
                    "brand": "Acme Coffee",
                    "title": "autumn hero",
                    "message": "a steaming mug on a wooden table, warm light",
                }
            ]
        )
        | {"dependentSchemas": dict.fromkeys(sorted(SHAPE_FIELDS), _NEEDS_MESSAGE)},
    )

    brand: str = Field(min_length=1, max_length=120)
    title: Annotated[str, BLANK_IS_ABSENT] = Field(default="", max_length=200)
    message: str | None = Field(
        default=None, min_length=1, max_length=MAX_BRIEF_CHARS, pattern=NOT_BLANK
    )


class MessageCreate(_Form, _Choices):
    """A follow-up: what it leaves out (count, size or aspect ratio, budget) is the previous
    turn's; a template, model or providers allow-list it names hold for its own turn."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=_one_shape([{"content": "warmer, and drop the mug"}])
    )

    # bounds inside the optional type and before the check, so that the schema states them
    count: Annotated[int, Field(ge=1, le=16), WHOLE] | None = Field(
        default=None,
        description="how many accepted images are wanted; left out: the previous turn's count "
        "(1 on a thread's first message)",
    )
    content: str = Field(min_length=1, max_length=MAX_BRIEF_CHARS, pattern=NOT_BLANK)


class MessagePublic(BaseModel):
    id: str
    seq: int
    role: Literal["user", "assistant"]
    content: str
    brief: str = Field(default="", description="the whole brief the agent ran for this message")
    edit: BriefEdit | None = Field(
        default=None, description="how this follow-up edited the thread's brief"
    )
    job: JobPublic | None = None
    reply: str | None = Field(default=None, description="the agent's answer once the job is done")
    refused: str | None = Field(
        default=None,
        description="why this turn's run was refused (moderation, the brand's conflict policy, "
        "bad input), once it is; a refused turn stays in the thread, but later follow-ups edit "
        "the brief of the latest turn not refused",
    )


class ThreadPublic(BaseModel):
    id: str
    brand: str = Field(description="the thread's brand's name now (it follows a rename)")
    brand_id: str | None = Field(
        default=None,
        description="the thread's brand; null only for a thread from before brands were kept "
        "by id whose brand could not be told (its follow-ups are refused)",
    )
    title: str
    created_at: datetime
    messages: list[MessagePublic] = Field(default_factory=list)


class MessageAccepted(BaseModel):
    message: MessagePublic
    job: JobPublic


class CampaignAsset(_In):
    brief: str = Field(min_length=1, max_length=MAX_BRIEF_CHARS, pattern=NOT_BLANK)
    formats: list[Annotated[str, Field(pattern=FORMAT_PATTERN)]] = Field(
        default=["1024x1024"],  # declared in the schema (pydantic copies it per model)
        min_length=1,
        max_length=MAX_ASSET_FORMATS,
        examples=[["1024x1024", "16:9"]],
        description="each format once: one job per asset and image size (two spellings of one "
        "size, such as 1:1 and 1024x1024, are one job); left out, 1024x1024 (as a campaign "
        "file's `defaults.formats`)",
        json_schema_extra={"uniqueItems": True},
    )
    count: BodyInt = Field(default=1, ge=1, le=MAX_ASSET_COUNT)

    @field_validator("formats")
    @classmethod
    def _each_format_once(cls, value: list[str]) -> list[str]:
        # the schema's uniqueItems: the same text twice; two spellings of one size (1:1 and
        # 2:2) are schema-valid, and the route plans them as one job (domain.distinct_formats)
        twice = next((f for i, f in enumerate(value) if f in value[:i]), None)
        if twice is not None:  # a second job, paid again, for the same asset and format
            raise ValueError(f"a format is listed twice ({twice}); list each once")
        return value


class CampaignCreate(_In):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "autumn sale",
                    "brand": "Acme Coffee",
                    "budget_usd": 1.0,
                    "assets": [
                        {
                            "brief": "hero banner, warm autumn light",
                            "formats": ["1024x640"],
                            "count": 1,
                        },
                        {
                            "brief": "square social post, a steaming cup",
                            "formats": ["1:1"],
                            "count": 2,
                        },
                    ],
                }
            ]
        },
    )

    name: Annotated[str, BLANK_IS_ABSENT] = Field(default="", max_length=200)
    brand: str = Field(min_length=1, max_length=120)
    budget_usd: float = Field(
        ge=0.01,
        le=10_000,
        allow_inf_nan=False,
        description="shared by every asset of the campaign: at least one cent",
    )
    assets: list[CampaignAsset] = Field(min_length=1, max_length=50)


class CampaignAssetStatus(BaseModel):
    index: int
    brief: str
    format: str
    count: int
    job: JobPublic


class CampaignConsistency(BaseModel):
    """The same figures as ``brandloop campaign run`` reports (``brandloop.agent.consistency``):
    spreads, so lower is more consistent; null (not measured) with fewer than two images."""

    images: int = Field(description="accepted images the figures are over")
    palette_spread: float | None = Field(
        description="mean pairwise total-variation distance of the images' brand-palette "
        "distributions, 0..1; lower is more consistent; null with fewer than two images"
    )
    descriptor_spread: float | None = Field(
        description="mean CIEDE2000 distance of each image's mean colour to the set's mean; "
        "lower is more consistent; null with fewer than two images"
    )


#: ``awaiting_review``: no asset is queued or running, and some wait for a reviewer's verdict
CampaignState = Literal["queued", "running", "awaiting_review", "done"]


class CampaignPublic(BaseModel):
    id: str
    name: str
    brand: str = Field(description="the campaign's brand's name now (it follows a rename)")
    brand_id: str | None = Field(
        default=None,
        description="the campaign's brand; null only for a campaign from before brands were "
        "kept by id whose brand could not be told (its consistency is not measured)",
    )
    budget_usd: float
    spent_usd: float
    state: CampaignState = Field(
        description="done once every asset's job has ended; awaiting_review while none is "
        "queued or running and some wait for review"
    )
    progress: dict[str, int] = Field(description="jobs by state")
    consistency: CampaignConsistency | None = Field(
        default=None,
        description="how consistent the delivered images look, once the campaign is done "
        "(null before, awaiting_review included)",
    )
    assets: list[CampaignAssetStatus]
    created_at: datetime


def _a_rejection_says_why(schema: dict[str, Any]) -> None:
    schema["anyOf"] = [
        {"properties": {"decision": {"const": "approve"}}},
        {"required": ["note"], "properties": {"note": {"pattern": NOT_BLANK}}},
    ]


class ReviewDecision(_In):
    """A verdict: a rejection says why (a note that is not blank; the schema's ``anyOf``,
    checked with the body: a 422 ``validation`` before anything is looked up), as the
    studio's form asks."""

    model_config = ConfigDict(json_schema_extra=lambda schema: _a_rejection_says_why(schema))

    decision: Literal["approve", "reject"]
    note: str = Field(default="", max_length=MAX_REVIEW_NOTE_CHARS)

    @model_validator(mode="after")
    def _rejection_says_why(self) -> ReviewDecision:
        if self.decision == "reject" and is_blank(self.note):
            raise PydanticCustomError("blank", "a rejection needs a note saying why")
        return self


class TemplateReviewDecision(ReviewDecision):
    """A verdict on a template version: a rejection says why, as a run's does."""


class TemplateSubmit(_In):
    """What a submission may carry: a note for the reviewer, stored with the ``submit`` step as
    ``brandloop templates submit --note`` stores one (the body is optional: none, or ``{}``, is
    a submission without a note)."""

    note: str = Field(
        default="",
        max_length=MAX_REVIEW_NOTE_CHARS,
        description="a note for the reviewer, as a review's note (at most 2,000 characters)",
    )


class NoFields(_In):
    """The body of a POST that takes no fields: none, or ``{}``. A member is a 422
    (``extra_forbidden``), as an unknown member of any other body is: never ignored."""


#: the optional body of a POST that takes no fields (``POST /v1/jobs/{id}/cancel``,
#: ``POST /v1/runs/{id}/resume``): ``_: NoBody = None``
NoBody = Annotated[NoFields | None, Body(title="Body", description="none, or an empty object")]


class TemplateAwaitingReview(BaseModel):
    template: str = Field(examples=["seasonal-banner@2"])
    author: str
    message: str


class RunAwaitingReview(BaseModel):
    run_id: str
    brand: str
    brief: str


class ReviewQueue(BaseModel):
    """What waits for an approver: template versions in review and runs awaiting review."""

    templates: list[TemplateAwaitingReview]
    runs: list[RunAwaitingReview]


class ReviewVerdict(BaseModel):
    """A verdict on a run, and the run's status after it."""

    run_id: str
    decision: Literal["approve", "reject"]
    note: str
    by: str = Field(description="the deciding principal")
    key_id: str = Field(description="the key the principal used")
    status: RunStatus


class ReviewAssign(_In):
    assignee: str = Field(
        min_length=1,
        max_length=120,
        pattern=PRINCIPAL_NAME,
        description="the reviewer: a principal of the tenant with an approver or admin key "
        "(422 otherwise)",
    )


class ImageRatingIn(_In):
    on_brand: BodyInt = Field(ge=1, le=5)
    usable: bool
    note: str = Field(default="", max_length=2000)


class ImageRating(BaseModel):
    sha256: str
    run_id: str
    principal: str
    on_brand: int
    usable: bool
    note: str


def _some_weight_above_zero(schema: dict[str, Any]) -> None:
    """Keys are version numbers (``propertyNames``), values weights (``additionalProperties``,
    the form generated clients read as a map; ``patternProperties`` they drop), and not every
    weight is 0 (``not``)."""
    weights = schema["properties"]["weights"]
    ((pattern, weight),) = weights.pop("patternProperties").items()
    weights["propertyNames"] = {"pattern": pattern}
    weights["additionalProperties"] = weight
    weights["not"] = {"additionalProperties": {"maximum": 0}}


class LabelUpdate(_In):
    """Where a label points: version numbers with their share of traffic (at least one share
    above zero; the schema says so with ``not``: not every weight is 0)."""

    model_config = ConfigDict(json_schema_extra=lambda schema: _some_weight_above_zero(schema))

    weights: dict[
        Annotated[str, Field(pattern=r"^[1-9][0-9]{0,5}$")],
        Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)],
    ] = Field(
        min_length=1,
        max_length=20,
        description="version -> weight (relative; at least one above 0)",
        examples=[{"2": 0.9, "3": 0.1}],
    )


#: the param names a template may not set, as the schema lists them
_RESERVED_PARAM_NAMES: list[JsonValue] = [*sorted(RESERVED_PARAMS)]


class TemplateMetadataIn(_In):
    """What a reviewer wants to know about a version besides its text (as a template file's
    ``metadata``)."""

    domain: str = Field(default="", max_length=200, examples=["retail"])
    tone: str = Field(default="", max_length=200, examples=["warm, seasonal"])
    safety_notes: str = Field(default="", max_length=2000)


class TemplateVersionCreate(_In):
    body: Annotated[
        str,
        Field(
            min_length=1, max_length=MAX_TEMPLATE_CHARS, json_schema_extra={"pattern": NOT_BLANK}
        ),
        not_blank("body"),
    ]
    #: the engine's limit for either text (``templates/sandbox.py``), as the CLI and an import
    #: take it: 4,000 here before session 34 refused what ``templates create`` stored
    negative_body: str = Field(default="", max_length=MAX_TEMPLATE_CHARS)
    params: dict[str, JsonValue] = Field(
        default_factory=dict,
        # the rule governance.check_params applies, stated in the schema (a 422 otherwise)
        json_schema_extra={
            "additionalProperties": {
                "anyOf": [
                    {"type": "string", "maxLength": MAX_PARAM_TEXT_CHARS},
                    {"type": "number"},
                    {"type": "boolean"},
                ]
            },
            # reserved names are refused in any case (``Seed`` too); the enum lists them once
            "propertyNames": {
                "pattern": PARAM_NAME.pattern,
                "not": {"enum": _RESERVED_PARAM_NAMES},
            },
            "properties": {"quality": {"type": "string"}},
        },
        description="the defaults of every call made from the version (docs/templates.md): "
        "scalar values; `quality` narrows the planner to that setting. A 422: a name that is "
        "not a word (1-64 of A-Z a-z 0-9 _ . -, starting with a letter), a field brandloop "
        "sets itself in any case (prompt, model, n, size, Seed, ...), a value that is not "
        "text of at most 2,000 characters, a number or true/false, or a name or value shaped "
        "like an API key, token or password (named, never echoed)",
        examples=[{"quality": "high", "steps": 30}],
    )
    model_hints: list[Annotated[str, Field(pattern=MODEL_HINT_PATTERN.pattern)]] = Field(
        default_factory=list,
        max_length=20,
        # governance.check_model_hints refuses one listed twice (a 422 naming it)
        json_schema_extra={"uniqueItems": True},
        examples=[["procedural/draft"]],
    )
    message: str = Field(default="", max_length=MAX_MESSAGE_CHARS)
    description: str = Field(default="", max_length=2000)
    metadata: TemplateMetadataIn = Field(default_factory=TemplateMetadataIn)


class NoteCreate(_In):
    brand: str = Field(min_length=1, max_length=120)
    text: Annotated[
        str,
        Field(min_length=1, max_length=MAX_NOTE_CHARS, json_schema_extra={"pattern": NOT_BLANK}),
        not_blank("note"),
    ]


class NoteCreated(BaseModel):
    """A style note as stored: personal data is redacted before it is stored."""

    id: str = Field(examples=["note-282b129d340c738fdb2dee31e6f87234"])
    brand: str = Field(description="the brand's name")
    text: str = Field(description="the text kept")
    redacted: list[str] = Field(
        description="the kinds of personal data taken out, and 'key' for an API key",
        examples=[["email"]],
    )


class KeyCreate(_In):
    role: Literal["viewer", "creator", "approver", "admin"]
    name: str = Field(default="", max_length=120, description="a note on what the key is for")
    principal: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        pattern=PRINCIPAL_NAME,
        description="whose key it is (created if new); default: the caller's own principal",
    )


class KeyPublic(BaseModel):
    id: str
    tenant: str
    principal: str = Field(description="the principal (user) the key belongs to")
    role: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


class WhoAmI(BaseModel):
    """Who the calling key belongs to."""

    key_id: str
    tenant: str
    principal: str
    role: str


class KeyCreated(KeyPublic):
    key: str = Field(description="the secret key; shown only this once")
