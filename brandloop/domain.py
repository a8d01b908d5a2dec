"""The domain model every part of brandloop speaks: brand kits, requests, templates, catalog
entries, candidates, attempts, scores, verdicts, results and receipts.

These are the shapes of the CLI's ``--json`` output and of the HTTP API's bodies; the registry
stores them, the agent passes them between nodes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)

HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
# ASCII digits only: in a str pattern \d also takes other scripts' digits
SIZE_PATTERN = re.compile(r"^([0-9]{1,7})x([0-9]{1,7})$")
#: one side of a size as a schema states it: 64..4096 in ASCII digits, no leading zero
SIDE_TEXT = r"(6[4-9]|[7-9][0-9]|[1-9][0-9]{2}|[1-3][0-9]{3}|40[0-8][0-9]|409[0-6])"
#: a size as a schema states it (what :func:`parse_size` takes, without blanks or leading zeros)
SIZE_TEXT = rf"^{SIDE_TEXT}x{SIDE_TEXT}$"
ASPECT_PATTERN = re.compile(r"^([0-9]{1,3}):([0-9]{1,3})$")
#: an aspect ratio as a schema states it: W:H, each part 1..999 in ASCII digits, no leading zero
_PART_TEXT = r"[1-9][0-9]{0,2}"
ASPECT_TEXT = rf"^{_PART_TEXT}:{_PART_TEXT}$"
#: a campaign asset's format as a schema states it: a size or an aspect ratio (either)
FORMAT_TEXT = rf"^({SIDE_TEXT}x{SIDE_TEXT}|{_PART_TEXT}:{_PART_TEXT})$"
PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
#: a brand name: ASCII letters and digits, with spaces, '_', '.' and '-' after the first
BRAND_NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$"
#: what a brand name must be, in words (a kit's error says this, not the pattern)
BRAND_NAME_RULE = (
    "must be 1-80 ASCII letters, digits, spaces, '_', '.' or '-', starting with a letter or digit"
)
#: a pattern a field is held to, in the words its error gives instead of the pattern itself
PATTERN_WORDS: dict[str, str] = {BRAND_NAME: BRAND_NAME_RULE}
#: what may name a brand in a lookup: the name alphabet only (no letters of other scripts,
#: no tabs, no non-breaking spaces), so a look-alike never reaches another brand's key
_BRAND_REF = re.compile(r"[A-Za-z0-9 _.-]{1,80}")
_BRAND_KEY_RUN = re.compile(r"[^a-z0-9]+")
#: a brand's registry id: ``brand_`` and 20 hex digits (``registry.crud.new_id``)
BRAND_ID = re.compile(r"brand_[0-9a-f]{20}")
#: the validation context of a kit read back from the registry: rules added since it was
#: stored (:func:`check_brand_name`) are not applied to it
STORED_KIT = "stored_kit"
#: the key (:func:`brand_key`) of a name spelt like a brand id, in any case or separators
_ID_SHAPED_KEY = re.compile(r"brand-[0-9a-f]{20}")

#: a campaign id: a campaign file's name syntax (lower-case letters, digits, '_', '.', '-',
#: starting with a letter or digit), up to the 120 characters the registry keeps; so 'C9',
#: 'c9 ' and 'c9\n' are bad input, never campaigns of their own beside 'c9'
CAMPAIGN_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,119}")

MAX_BRIEF_CHARS = 4000
#: A style note's limit: what a prompt can hold (the text gate's default ``max_chars``, the
#: brief's limit), so a note is never refused by moderation for its length
MAX_NOTE_CHARS = MAX_BRIEF_CHARS
#: A template version's commit message and a review note (of a template version or a run):
#: at most this many characters wherever they are typed (the API's schemas, a template file's
#: ``message:``, the CLI's ``-m`` and ``--note``, the studio's forms)
MAX_MESSAGE_CHARS = 2000
MAX_REVIEW_NOTE_CHARS = 2000
#: A campaign asset (``POST /v1/campaigns``, a ``campaign run`` file): at most this many
#: formats, and at most this many accepted images wanted per format.
MAX_ASSET_FORMATS = 8
MAX_ASSET_COUNT = 8

#: Characters that show nothing: white space as Python's ``str.isspace`` sees it, and the
#: invisible ones moderation strips before it reads a text (zero-width characters, bidi
#: controls, the word joiner, the byte order mark, the soft hyphen, the Mongolian vowel
#: separator: ``brandloop.tools.moderation.normalize``), written out (regex engines disagree
#: on ``\s``). Text made only of these is blank: "brief is empty", bad input everywhere.
BLANKS = (
    "\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    "\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff"
)
#: Text that must say something: at least one character that is not blank (the schemas'
#: pattern, searched anywhere in the text)
NOT_BLANK = f"[^{BLANKS}]"
_NOT_BLANK = re.compile(NOT_BLANK)
#: Why text with a NUL or a lone surrogate is refused: PostgreSQL cannot store a NUL, and
#: neither database can encode a lone surrogate (the API's input guard, the CLI's files).
UNSTORABLE = "text may not hold a NUL character or a lone surrogate"


def is_blank(text: str) -> bool:
    """True for text that shows nothing: empty, or only :data:`BLANKS` characters."""
    return _NOT_BLANK.search(text) is None


def unstorable(text: str) -> bool:
    """True for text no registry can store as given: a NUL, or a lone surrogate."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def unstorable_places(value: Any, where: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Where in parsed JSON or YAML (``value``) a string, or a mapping's key, is
    :func:`unstorable`: each place as the keys and indexes that lead to it."""
    places: list[tuple[str | int, ...]] = []
    if isinstance(value, str):
        if unstorable(value):
            places.append(where)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and unstorable(key):
                places.append((*where, "(key)"))
            places.extend(unstorable_places(item, (*where, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            places.extend(unstorable_places(item, (*where, index)))
    return places


#: The largest seed any provider takes (32 bits unsigned); planned seeds wrap around below it.
MAX_SEED = 2**32 - 1
MIN_SIDE = 64
MAX_SIDE = 4096
#: The most one request (one run) may be given to spend, in USD.
MAX_REQUEST_BUDGET_USD = 10_000

ColourRole = Literal["primary", "secondary", "accent", "background", "text", "neutral"]
RunStatus = Literal[
    "succeeded", "partial", "refused", "failed", "cancelled", "running", "awaiting_review"
]
ModelStatus = Literal["active", "deprecated", "retired"]
ModelTier = Literal["draft", "standard", "premium"]
AttemptOutcome = Literal["pending", "accepted", "rejected", "refused", "error", "blocked"]
#: what a provider call cost: billed (the charge is known), not billed, or unknown (the request
#: may have reached the backend, e.g. a read timeout): counted as spent until reconciled
Billing = Literal["billed", "not_billed", "unknown"]
TemplateStatus = Literal["draft", "in_review", "approved", "rejected"]
#: how a revision moves a brief's look: palette emphasis (warmer/cooler) and exposure target
#: (brighter/darker); see ``brandloop.agent.revision``
Shift = Literal["warmer", "cooler", "brighter", "darker"]
#: Why a run stopped short of what was asked (None: it did not).
StopCause = Literal["budget", "iterations", "unpromising", "refused", "providers_unavailable"]
ImageFormat = Literal["png", "jpeg", "webp"]
SignerKind = Literal["development", "local", "remote"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- brand kits


class PaletteColour(_Model):
    """One brand colour: a hex code, its role in layouts and a human name."""

    # the schema states the pattern; the check below names the value it refuses
    hex: str = Field(json_schema_extra={"pattern": HEX_COLOUR.pattern}, examples=["#6f4e37"])
    role: ColourRole = "primary"
    name: str = ""

    @field_validator("hex")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not HEX_COLOUR.fullmatch(value):
            raise ValueError(f"{value!r} is not a #rrggbb colour")
        return value.lower()

    @property
    def rgb(self) -> tuple[int, int, int]:
        return (int(self.hex[1:3], 16), int(self.hex[3:5], 16), int(self.hex[5:7], 16))


class BrandKit(_Model):
    """What makes images on-brand: palette, tone, words that must or must not appear."""

    name: str = Field(min_length=1, max_length=80, pattern=BRAND_NAME)
    palette: list[PaletteColour] = Field(min_length=1, max_length=12)
    tone: list[str] = Field(default_factory=list, max_length=20)
    required_terms: list[str] = Field(default_factory=list, max_length=20)
    forbidden_terms: list[str] = Field(default_factory=list, max_length=200)
    negative_prompt: str = Field(default="", max_length=1000)
    default_formats: list[Annotated[str, Field(pattern=SIZE_TEXT)]] = Field(
        default_factory=lambda: ["1024x1024"]
    )
    forbidden_colours: list[Annotated[str, Field(pattern=HEX_COLOUR.pattern)]] = Field(
        default_factory=list
    )
    description: str = Field(default="", max_length=2000)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str, info: ValidationInfo) -> str:
        # a brand stored under such a name before the rule is read as stored (rename it)
        if isinstance(info.context, dict) and info.context.get(STORED_KIT):
            return value
        return check_brand_name(value)

    @field_validator("default_formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        for fmt in value:
            parse_size(fmt)
        return value

    @field_validator("forbidden_colours")
    @classmethod
    def _forbidden(cls, value: list[str]) -> list[str]:
        for colour in value:
            if not HEX_COLOUR.fullmatch(colour):
                raise ValueError(f"{colour!r} is not a #rrggbb colour")
        return [c.lower() for c in value]

    @property
    def slug(self) -> str:
        """The brand's identity within its tenant (:func:`brand_key`), and its policy file's
        stem (``<slug>.yaml``)."""
        return brand_key(self.name)


def check_brand_name(name: str) -> str:
    """``name``, unless it is spelt like a brand id (:data:`BRAND_ID`, in any case or
    separators): a ``ValueError`` then. A brand's memory, lookups and the name-keyed notes a
    brand adopts (``api/style_notes.py``) take such a name for another brand's id: a brand
    renamed to another's id took that brand's notes. Every way a brand gets a name (a kit,
    ``brands rename``, ``POST /v1/brands/{ref}/rename``) checks it here."""
    if _ID_SHAPED_KEY.fullmatch(brand_key(name)):
        raise ValueError(
            f"brand name {name!r} is spelt like a brand id (brand_ and 20 hex digits); "
            "a brand's name must not be taken for another brand's id"
        )
    return name


def brand_key(name: str) -> str:
    """Which brand a name is: the name lower-cased, each run of spaces, '_', '.' and '-' read
    as one '-', none at either end. "Acme Coffee", "acme coffee", "ACME  COFFEE ",
    "Acme_Coffee" and "acme-coffee" are one brand of a tenant (its slug, ``acme-coffee``,
    which also names its policy file); "AcmeCoffee" (``acmecoffee``) is another.

    Brand names are ASCII (:data:`BRAND_NAME`), so no Unicode folding is involved: call
    :func:`brand_key_of` for text that may not be a name.
    """
    return _BRAND_KEY_RUN.sub("-", name.lower()).strip("-")


def brand_key_of(ref: str) -> str | None:
    """The key of a brand reference as given (a name, spelt any way :func:`brand_key` folds),
    or None when it cannot name a brand: a character outside the name alphabet (a letter of
    another script, a tab, a non-breaking space), no letter or digit at all, or too long."""
    if not _BRAND_REF.fullmatch(ref):
        return None
    return brand_key(ref) or None


# --------------------------------------------------------------------------- requests


def repeated_format(formats: list[str]) -> str | None:
    """The first format an asset lists twice, or None: each would be a second job, paid
    again, for the same asset and format (the CLI's campaign file and POST /v1/campaigns).
    Twice means the same image size, however it is spelled: ``1:1``, ``2:2`` and
    ``1024x1024`` are one format (named as ``2:2, the same 1024x1024 as 1:1``)."""
    seen: dict[object, str] = {}
    for fmt in formats:
        made = _made_size(fmt)
        if made in seen:
            first = seen[made]
            if first == fmt or not isinstance(made, tuple):
                return fmt
            return f"{fmt}, the same {made[0]}x{made[1]} as {first}"
        seen[made] = fmt
    return None


def distinct_formats(formats: list[str]) -> list[str]:
    """``formats`` with each image size once, by its first spelling (``1:1``, ``2:2`` and
    ``1024x1024`` are one job: ``POST /v1/campaigns`` plans one, never pays twice)."""
    seen: set[object] = set()
    kept = []
    for fmt in formats:
        made = _made_size(fmt)
        if made not in seen:
            seen.add(made)
            kept.append(fmt)
    return kept


def _made_size(fmt: str) -> object:
    """The size a format is made at, or the text itself when it is not a format (reported
    by the format's own check)."""
    try:
        if ":" in fmt:
            return size_for_aspect(fmt)
        return fit_elongation(*parse_size(fmt))
    except ValueError:
        return fmt


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` into a pair of ints, refusing sizes no backend could make."""
    match = SIZE_PATTERN.fullmatch(text.strip())
    if not match:
        raise ValueError(f"size {text!r} is not of the form WIDTHxHEIGHT, e.g. 1024x1024")
    width, height = int(match.group(1)), int(match.group(2))
    for side in (width, height):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise ValueError(
                f"size {text!r} is impossible: each side must be {MIN_SIDE}..{MAX_SIDE} pixels"
            )
    return width, height


def size_for_aspect(aspect: str, long_side: int = 1024) -> tuple[int, int]:
    match = ASPECT_PATTERN.fullmatch(aspect.strip())
    if not match and re.fullmatch(r"[0-9]+:[0-9]+", aspect.strip()):
        raise ValueError(
            f"aspect ratio {aspect!r} is out of range: each part is 1..999, e.g. 16:9 (a shape "
            "past 4:1 is made at 4:1)"
        )
    if not match:
        raise ValueError(f"aspect ratio {aspect!r} is not of the form W:H, e.g. 16:9")
    w, h = int(match.group(1)), int(match.group(2))
    if w == 0 or h == 0:
        raise ValueError(f"aspect ratio {aspect!r} is impossible (each part must be above 0)")
    # a ratio is a shape hint (each model makes the nearest shape it supports): one past 4:1
    # is made at 4:1, the most elongated shape brandloop asks of a model
    w, h = min(w, 4 * h), min(h, 4 * w)
    if w >= h:
        return long_side, max(MIN_SIDE, round(long_side * h / w / 8) * 8)
    return max(MIN_SIDE, round(long_side * w / h / 8) * 8), long_side


def fit_elongation(width: int, height: int) -> tuple[int, int]:
    """``width`` x ``height`` made no more elongated than 4:1, the most elongated shape
    brandloop asks of a model: the long side is kept and the short side raised to a quarter of
    it (a size within 4:1 is returned as it is)."""
    if width > 4 * height:
        return width, -(-width // 4)
    if height > 4 * width:
        return -(-height // 4), height
    return width, height


def size_past_limit(size: str) -> bool:
    """Is ``size`` (``WxH``) more elongated than 4:1, so that it is made at 4:1?"""
    match = SIZE_PATTERN.fullmatch(size.strip())
    if not match:
        return False
    w, h = int(match.group(1)), int(match.group(2))
    return w > 0 and h > 0 and max(w, h) > 4 * min(w, h)


def aspect_past_limit(aspect: str) -> bool:
    """Is ``aspect`` (``W:H``) more elongated than 4:1, so that it is made at 4:1?"""
    match = ASPECT_PATTERN.fullmatch(aspect.strip())
    if not match:
        return False
    w, h = int(match.group(1)), int(match.group(2))
    return w > 0 and h > 0 and max(w, h) > 4 * min(w, h)


def campaign_id_problem(value: str) -> str:
    """Why ``value`` is not a campaign id (:data:`CAMPAIGN_ID`), or ``""``."""
    if CAMPAIGN_ID.fullmatch(value):
        return ""
    return (
        f"{value!r} is not a campaign id: 1-120 of lower-case letters, digits, '_', '.' and "
        "'-', starting with a letter or digit"
    )


def _check_size(value: str) -> str:
    parse_size(value)
    return value


def _check_aspect_ratio(value: str) -> str:
    size_for_aspect(value)
    return value


#: ``WxH`` that a backend could make, e.g. ``1024x640`` (checked by :func:`parse_size`)
Size = Annotated[str, AfterValidator(_check_size)]
#: ``W:H``, e.g. ``16:9``; past 4:1 made at 4:1 (checked by :func:`size_for_aspect`)
AspectRatio = Annotated[str, AfterValidator(_check_aspect_ratio)]


class GenerationRequest(_Model):
    """A creative request (a brief) as a caller states it."""

    brief: str
    brand: str = Field(min_length=1, description="brand id or name")
    brand_id: str | None = Field(
        default=None,
        max_length=120,
        description="the brand's id, bound when the request was admitted (a job accepted, a "
        "campaign started): every later step finds the kit by it, so a rename meanwhile - or "
        "another brand taking the old name - never moves the work to another brand; none: "
        "by ``brand``",
    )
    count: int = Field(default=1, ge=1, le=16)
    size: Size | None = None
    aspect_ratio: AspectRatio | None = None
    budget_usd: float | None = Field(
        default=None, ge=0, le=MAX_REQUEST_BUDGET_USD, allow_inf_nan=False
    )
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    model: str | None = None
    template: str | None = None
    campaign_id: str | None = Field(default=None, max_length=120)
    thread_id: str | None = Field(default=None, max_length=120)
    avoid: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="what the images must not show (a revision's removals): negative prompt",
    )
    shifts: list[Shift] = Field(
        default_factory=list,
        max_length=2,
        description="palette emphasis and exposure target shifts a revision asked for",
    )
    answer: str | None = Field(
        default=None,
        max_length=MAX_BRIEF_CHARS,
        description="a thread's reply that took the brand's clarifying offer (keep the "
        "palette, the brief's colours as accents): preflight adapts for this run, not asks",
    )
    tenant: str = "default"
    output_format: ImageFormat | None = Field(
        default=None,
        description="file format of the accepted images; default: as the model made them",
    )
    providers: list[str] | None = Field(
        default=None,
        max_length=16,
        description="only these providers (an allow-list); none: every configured one",
    )
    allow_preview: bool = Field(
        default=False,
        description="allow the procedural preview renderer beside configured real providers",
    )

    @field_validator("providers")
    @classmethod
    def _providers(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = [v.strip() for v in value]
        for name in names:
            if not PROVIDER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a provider name (lower-case letters, digits, -)")
        if not names:
            raise ValueError("providers is empty: leave it out to allow every provider")
        return list(dict.fromkeys(names))

    @field_validator("brand_id", "model", "template", "campaign_id", "thread_id")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        # "" is not "none given": a blank template or model must not quietly mean the default,
        # nor a blank campaign id open a campaign (and a budget) nobody can name
        if value is not None and is_blank(value):
            raise ValueError("is blank: leave it out instead")
        return value

    @field_validator("avoid")
    @classmethod
    def _avoid(cls, value: list[str]) -> list[str]:
        for term in value:
            if not term.strip() or len(term) > 80:
                raise ValueError("each avoided term is 1-80 characters")
        return value

    @field_validator("brief")
    @classmethod
    def _brief(cls, value: str) -> str:
        if unstorable(value):
            raise ValueError(f"brief: {UNSTORABLE}")
        if is_blank(value):
            raise ValueError("brief is empty")
        if len(value) > MAX_BRIEF_CHARS:
            raise ValueError(f"brief is {len(value)} characters; the limit is {MAX_BRIEF_CHARS}")
        return value

    @model_validator(mode="after")
    def _size_or_aspect(self) -> GenerationRequest:
        if self.size and self.aspect_ratio:
            raise ValueError("give size or aspect_ratio, not both")
        return self

    def past_limit(self) -> bool:
        """Is the asked shape (``size`` or ``aspect_ratio``) more elongated than 4:1?"""
        if self.size:
            return size_past_limit(self.size)
        return self.aspect_ratio is not None and aspect_past_limit(self.aspect_ratio)

    def dimensions(self, default: str = "1024x1024") -> tuple[int, int]:
        """The size to make; a size or ratio past 4:1 is made at 4:1 (intake records it)."""
        if self.size:
            return fit_elongation(*parse_size(self.size))
        if self.aspect_ratio:
            return size_for_aspect(self.aspect_ratio)
        return parse_size(default)


# --------------------------------------------------------------------------- templates


class TemplateVersion(_Model):
    """An immutable, numbered version of a prompt template."""

    name: str
    version: int = Field(ge=1)
    body: str
    negative_body: str = ""
    params: dict[str, JsonValue] = Field(default_factory=dict)
    model_hints: list[str] = Field(default_factory=list)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    author: str = "system"
    message: str = ""
    status: TemplateStatus = "draft"
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class PromptTemplate(_Model):
    name: str
    description: str = ""
    versions: list[TemplateVersion] = Field(default_factory=list)
    labels: dict[str, int | dict[str, float]] = Field(
        default_factory=dict,
        description="label -> the version that gets all its traffic, or, when it splits "
        "traffic across versions, version -> weight as PUT .../labels/{label} takes them",
        examples=[{"production": 2, "canary": {"2": 90.0, "3": 10.0}}],
    )
    label_weights: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="label -> version -> weight for every label (one version too), the body "
        "of PUT .../labels/{label} that sets it again",
        examples=[{"production": {"2": 1.0}, "canary": {"2": 90.0, "3": 10.0}}],
    )


# --------------------------------------------------------------------------- catalog


class ModelSpec(_Model):
    """One entry of the model catalog."""

    id: str = Field(description="provider/model, e.g. procedural/draft")
    provider: str
    model: str
    version: str = "1"
    tier: ModelTier = "standard"
    status: ModelStatus = "active"
    price_per_image_usd: float = Field(ge=0)
    sizes: list[str] = Field(default_factory=list, description="empty: any size")
    supports_seed: bool = True
    supports_negative_prompt: bool = True
    max_prompt_chars: int = 4000
    max_images_per_call: int = 1
    quality_baseline: float = Field(default=0.5, ge=0, le=1)
    licence: str = ""
    notes: str = ""
    aspect_ratios: list[str] = Field(
        default_factory=list, description="W:H ratios for backends that take a ratio, not pixels"
    )
    qualities: list[str] = Field(default_factory=list, description="e.g. low, medium, high")
    default_quality: str | None = None
    prices: dict[str, float] = Field(
        default_factory=dict,
        description="USD per image by 'WxH/quality', 'WxH', 'quality' or '*'; "
        "price_per_image_usd when none matches",
    )
    usage_prices_per_mtok: dict[str, float] = Field(
        default_factory=dict,
        description="USD per million tokens by usage kind (text_input, image_input, "
        "image_output) for backends that bill by token",
    )


# --------------------------------------------------------------------------- the loop


class Candidate(_Model):
    """One planned generation: a rendered prompt on a model with a seed."""

    id: str
    template: str
    prompt: str
    negative_prompt: str = ""
    model: str
    seed: int
    width: int
    height: int
    params: dict[str, Any] = Field(default_factory=dict)
    iteration: int = 0
    estimated_cost_usd: float = 0.0
    modifiers: list[str] = Field(default_factory=list)


class Signal(_Model):
    """One quality signal: a value in [0, 1], its raw measure and a one-line explanation."""

    name: str
    value: float = Field(ge=0, le=1)
    raw: float
    passed: bool
    threshold: float
    explanation: str

    @classmethod
    def judged(
        cls,
        name: str,
        value: float,
        *,
        raw: float,
        threshold: float,
        explain: Callable[[bool], str],
    ) -> Signal:
        """The signal that passes at ``value >= threshold``; ``explain`` says why, either way."""
        passed = value >= threshold
        return cls(
            name=name,
            value=value,
            raw=raw,
            passed=passed,
            threshold=threshold,
            explanation=explain(passed),
        )


class Scores(_Model):
    signals: dict[str, Signal] = Field(default_factory=dict)
    composite: float = 0.0

    @property
    def failed(self) -> list[str]:
        return [name for name, sig in self.signals.items() if not sig.passed]

    def values(self) -> dict[str, float]:
        return {name: round(sig.value, 4) for name, sig in self.signals.items()}


ModerationLayer = Literal[
    "limits", "lexical", "minors", "semantic", "brand", "profanity", "hosted", "image"
]


class ModerationFinding(_Model):
    """Why a check blocked: which layer fired, in which category, on which span.

    ``start``/``end`` index the *normalised* text (see
    ``brandloop.tools.moderation.normalize``), never the raw input; ``excerpt`` is that span
    of the normalised text with any personal data in it replaced by ``[redacted <kind>]``, so
    a stored finding never carries PII.
    """

    layer: ModerationLayer
    category: str
    start: int | None = Field(default=None, ge=0)
    end: int | None = Field(default=None, ge=0)
    excerpt: str | None = None
    rule: str = Field(default="", description="the listed term, sense or classifier head")
    score: float | None = None


class ModerationVerdict(_Model):
    """The verdict of one moderation check, text or image, ours or a provider's."""

    allowed: bool
    source: str = Field(description="which check: brief, prompt, image, provider")
    categories: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)
    findings: list[ModerationFinding] = Field(default_factory=list)


class Attempt(_Model):
    """One executed candidate: what was asked, what came back, what it cost and how it fared."""

    id: str
    candidate: Candidate
    outcome: AttemptOutcome
    artifact_sha256: str | None = None
    seed_returned: int | None = None
    provider_request_id: str | None = None
    idempotency_key: str = ""
    tries: int = Field(
        default=1, ge=0, description="provider calls this attempt took (retries + 1)"
    )
    revised_prompt: str | None = Field(
        default=None, description="the prompt as the backend rewrote it, where it reports one"
    )
    cost_usd: float = 0.0
    billing: Billing | None = Field(
        default=None, description="None: no paid call was made (a cache hit, a reuse)"
    )
    latency_ms: float = 0.0
    scores: Scores | None = None
    moderation: ModerationVerdict | None = None
    error: str | None = None
    cache_hit: bool = False
    started_at: datetime = Field(default_factory=utcnow)


class Decision(_Model):
    """A structured event in the run trace: what the agent decided, why, on which signals."""

    node: str
    action: str
    reason: str
    signals: dict[str, float] = Field(default_factory=dict)
    at: datetime = Field(default_factory=utcnow)


class AcceptedImage(_Model):
    path: str | None = None
    sha256: str
    model: str
    seed: int | None
    template: str
    prompt: str
    negative_prompt: str = ""
    scores: dict[str, float]
    composite: float
    cost_usd: float
    width: int
    height: int
    preview: bool = Field(
        default=False,
        description="made by the procedural preview renderer, not a generative model",
    )
    cache_hit: bool = Field(default=False, description="served from the generation cache, $0")
    format: ImageFormat = "png"
    manifest_label: str | None = Field(
        default=None, description="label of the image's signed C2PA manifest (Content Credentials)"
    )
    deleted: bool = Field(
        default=False,
        description="the tenant deleted the image's bytes (DELETE /v1/artifacts/{sha256}): "
        "path is null; its receipt stays in the registry",
    )
    deleted_at: datetime | None = Field(
        default=None,
        description="when the tenant deleted the image's bytes (null while they are kept, and "
        "for an image deleted before this was recorded)",
    )


class AcceptanceRule(_Model):
    """The bar an image cleared to be accepted, as the agent policy stated it at the time."""

    accept_composite: float
    require_all_signals: bool

    @property
    def text(self) -> str:
        rule = f"composite >= {self.accept_composite:g}"
        return rule + (" and every signal passes" if self.require_all_signals else "")


class ContentCredentials(_Model):
    """Where an accepted image's C2PA manifest is and who signed it (set after signing)."""

    manifest_label: str
    format: ImageFormat
    digital_source_type: str
    signer: str = Field(description="subject of the signing certificate")
    signer_kind: SignerKind
    receipt_sha256: str = Field(description="the receipt digest the manifest's assertion carries")


class ReplayOf(_Model):
    """The earlier paid attempt whose image a generation-cache hit serves again."""

    run_id: str
    attempt_id: str


class Receipt(_Model):
    """Provenance of one image: enough to trace it back and reproduce it."""

    run_id: str
    attempt_id: str
    sha256: str | None = None
    source_sha256: str | None = Field(
        default=None, description="sha256 of the image bytes exactly as the provider returned them"
    )
    template: str
    prompt: str
    negative_prompt: str
    model: str
    model_version: str
    provider: str
    provider_request_id: str | None = Field(
        default=None,
        description="the provider's id of the call that made the image; for a cache hit, the "
        "call of the attempt replayed (replay_of), not one made for this image",
    )
    seed_requested: int
    seed_returned: int | None = None
    revised_prompt: str | None = None
    tries: int = 1
    width: int
    height: int
    params: dict[str, JsonValue] = Field(default_factory=dict)
    scores: dict[str, float] = Field(default_factory=dict)
    composite: float = 0.0
    moderation: list[ModerationVerdict] = Field(default_factory=list)
    cost_usd: float = 0.0
    redactions: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    preview: bool = Field(
        default=False,
        description="made by the procedural preview renderer, not a generative model",
    )
    created_at: datetime = Field(default_factory=utcnow)
    format: ImageFormat = "png"
    acceptance: AcceptanceRule | None = None
    digital_source_type: str | None = Field(
        default=None, description="IPTC digital source type (a cv.iptc.org URL)"
    )
    edits: list[str] = Field(
        default_factory=list,
        description="C2PA actions brandloop applied after the model (c2pa.cropped, c2pa.resized, "
        "c2pa.transcoded)",
    )
    credentials: ContentCredentials | None = None
    cache_hit: bool = Field(
        default=False,
        description="served from the generation cache at $0: no provider call was made for it",
    )
    replay_of: ReplayOf | None = Field(
        default=None,
        description="for a cache hit, the run and attempt whose paid call made the image "
        "(None when that attempt is no longer in the registry)",
    )

    def content_digest(self) -> str:
        """See :func:`receipt_digest`."""
        return receipt_digest(self.model_dump(mode="json"))


_POST_SIGNING_FIELDS = frozenset({"sha256", "credentials"})


def receipt_digest(receipt: dict[str, Any]) -> str:
    """sha256 of a receipt (its JSON form, as stored) without the fields that only exist once
    the signed file does (``sha256``, ``credentials``). The C2PA receipt assertion carries it,
    so verify can tell that the registry's receipt is the one that was signed. Computed over
    the stored JSON, not a re-parsed model, so a later schema with new defaults cannot move it."""
    body = {key: value for key, value in receipt.items() if key not in _POST_SIGNING_FIELDS}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class RunResult(_Model):
    """What a run produced; the CLI's ``--json`` output and the API's job result."""

    run_id: str
    status: RunStatus
    brand: str
    brief: str
    reason: str = ""
    images: list[AcceptedImage] = Field(default_factory=list)
    attempts: int = 0
    cost_usd: float = 0.0
    decisions: list[Decision] = Field(default_factory=list)
    receipt_path: str | None = None
    stop_cause: StopCause | None = Field(
        default=None, description="why the run stopped short, when it did"
    )
    clarification: str | None = Field(
        default=None,
        description="the question the run asks instead of spending (brand conflict policy ask)",
    )
