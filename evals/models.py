"""The shapes of an eval suite file (``evals/suites/*.yaml``) and of what a run records.

The JSON schema published at ``evals/schema/suite.schema.json`` is generated from
:class:`SuiteFile` (``python -m brandloop.evals.schema``); a test keeps the two identical.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from brandloop.domain import (
    MAX_BRIEF_CHARS,
    MAX_REQUEST_BUDGET_USD,
    UNSTORABLE,
    AspectRatio,
    Size,
    is_blank,
    unstorable,
)

SUITE_FORMAT: Final = "brandloop.eval-suite/1"
ID_PATTERN = r"^[a-z0-9][a-z0-9_.=-]*$"
#: The longest suite name, target name and (expanded) case id: each names a file or folder of
#: the run dir (``<suite>-v<N>-<hash>``, ``data/<target>``, ``<case>__r<k>.json``), which a
#: file system bounds at 255 bytes; a 260-character case id once failed only after it had run.
MAX_ID_CHARS: Final = 120


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Input(_Model):
    """What a suite file or a ``--target`` states: numbers are finite (``.nan``, ``.inf`` and
    ``nan`` are refused by name, not as out of range)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --------------------------------------------------------------------------- assertions


class AssertionBase(_Input):
    """What every assertion kind has: its share of the case score and a description."""

    weight: float = Field(default=1.0, ge=0, description="share of the case score")
    description: str = ""


class MinScore(AssertionBase):
    """Accepted images score at least ``min`` on ``signal`` (``composite`` or a signal name)."""

    kind: Literal["min_score"]
    signal: str = "composite"
    min: float = Field(ge=0, le=1)
    over: Literal["every", "mean", "best"] = Field(
        default="every", description="every accepted image, their mean, or the best one"
    )


class Accepted(AssertionBase):
    """The run accepted at least ``min_images`` images (default: the request's count)."""

    kind: Literal["accepted"]
    min_images: int | None = Field(default=None, ge=1)


class RefusedAtIntake(AssertionBase):
    """The brief was refused at intake (RunResult.status == "refused"), nothing generated."""

    kind: Literal["refused"]
    reason_contains: str | None = None


class BlockedByModeration(AssertionBase):
    """At least one attempt was blocked by moderation and no blocked image was accepted."""

    kind: Literal["blocked"]


class NoPii(AssertionBase):
    """None of ``values`` appears in any stored prompt (runs.brief, attempts.prompt)."""

    kind: Literal["no_pii"]
    values: list[str] = Field(min_length=1)


class MaxCost(AssertionBase):
    kind: Literal["max_cost"]
    max_usd: float = Field(ge=0)


class MaxAttempts(AssertionBase):
    kind: Literal["max_attempts"]
    max: int = Field(ge=0)


class MaxRounds(AssertionBase):
    """The run accepted or stopped within ``max`` rounds (plan-generate-observe cycles)."""

    kind: Literal["max_rounds"]
    max: int = Field(ge=1)


class MaxLatency(AssertionBase):
    """Wall time of the whole run, from request to result."""

    kind: Literal["max_latency"]
    max_ms: float = Field(gt=0)


class MinConsistency(AssertionBase):
    """The accepted images of the case's group look alike (colour-histogram intersection)."""

    kind: Literal["min_consistency"]
    min: float = Field(ge=0, le=1)


Assertion = Annotated[
    MinScore
    | Accepted
    | RefusedAtIntake
    | BlockedByModeration
    | NoPii
    | MaxCost
    | MaxAttempts
    | MaxRounds
    | MaxLatency
    | MinConsistency,
    Field(discriminator="kind"),
]
AssertionKind = Literal[
    "min_score",
    "accepted",
    "refused",
    "blocked",
    "no_pii",
    "max_cost",
    "max_attempts",
    "max_rounds",
    "max_latency",
    "min_consistency",
]


# --------------------------------------------------------------------------- cases


class RequestParams(_Input):
    """Request fields a case (or the suite's defaults) may set; the target may override some."""

    count: int | None = Field(default=None, ge=1, le=16)
    size: Size | None = None
    aspect_ratio: AspectRatio | None = None
    budget_usd: float | None = Field(default=None, gt=0, le=MAX_REQUEST_BUDGET_USD)
    seed: int | None = Field(default=None, ge=0)
    model: str | None = None
    template: str | None = None


class RequestSpec(_Input):
    """Request fields as a case writes them: numbers may be ``{{var}}`` placeholders."""

    count: int | str | None = None
    size: str | None = None
    aspect_ratio: str | None = None
    budget_usd: float | str | None = None
    seed: int | str | None = None
    model: str | None = None
    template: str | None = None


class Defaults(_Input):
    """Applied to every case: request fields a case leaves unset, and assertions it adds to."""

    request: RequestParams = Field(default_factory=RequestParams)
    assertions: list[Assertion] = Field(default_factory=list)
    threshold: float = Field(default=1.0, ge=0, le=1)
    tags: list[str] = Field(default_factory=list)


class CaseSpec(_Input):
    """One case as written; ``vars`` expands it into one case per combination."""

    id: str = Field(description="unique after expansion; may use {{var}} placeholders")
    brief: str
    brand: str
    group: str | None = Field(
        default=None, description="cases in one group form a campaign, run in order"
    )
    request: RequestSpec = Field(default_factory=RequestSpec)
    assertions: list[Assertion] = Field(default_factory=list)
    inherit_assertions: bool = Field(
        default=True, description="false: the defaults' assertions do not apply"
    )
    threshold: float | None = Field(
        default=None, ge=0, le=1, description="weighted share of assertions that must pass"
    )
    tags: list[str] = Field(default_factory=list)
    vars: dict[str, list[str | int | float]] = Field(default_factory=dict)
    description: str = ""


class TargetSpec(_Input):
    """A configuration under evaluation. Two targets make an A/B comparison."""

    name: str = Field(pattern=ID_PATTERN, max_length=MAX_ID_CHARS)
    description: str = ""
    template: str | None = Field(
        default=None, description="template ref: name, name@VERSION or name:LABEL"
    )
    templates: list[str] = Field(
        default_factory=list,
        description="template YAML files registered as new versions before the run",
    )
    model: str | None = Field(default=None, description="use only this catalog model")
    budget_usd: float | None = Field(
        default=None, gt=0, le=MAX_REQUEST_BUDGET_USD, description="per-run budget override"
    )
    memory: bool = Field(default=True, description="planner setting: recall and remember")
    cache: bool = Field(default=True, description="use the generation cache")
    policy: dict[str, Any] = Field(
        default_factory=dict,
        description="agent policy overrides (keys of policies/agent_defaults.yaml)",
    )
    seed_offset: int = Field(default=0, ge=0, description="added to every case's seed")


class Gate(_Input):
    min_pass_rate: float = Field(default=1.0, ge=0, le=1)


class SuiteFile(_Input):
    """An eval suite: versioned, with brands to load, targets, defaults and cases."""

    format: Literal["brandloop.eval-suite/1"] = Field(
        default=SUITE_FORMAT, description="file format marker"
    )
    name: str = Field(pattern=ID_PATTERN, max_length=MAX_ID_CHARS)
    version: int = Field(ge=1)
    description: str = ""
    brands: list[str] = Field(
        default_factory=list, description="brand kit YAML paths, relative to the suite file"
    )
    gate: Gate = Field(default_factory=Gate)
    targets: list[TargetSpec] = Field(default_factory=lambda: [TargetSpec(name="default")])
    defaults: Defaults = Field(default_factory=Defaults)
    cases: list[CaseSpec] = Field(min_length=1)

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, value: list[TargetSpec]) -> list[TargetSpec]:
        names = [t.name for t in value]
        if len(set(names)) != len(names):
            raise ValueError("target names must be unique")
        return value


# --------------------------------------------------------------------------- expanded


class Case(_Input):
    """A case after defaults and vars are applied: what the runner executes."""

    id: str = Field(pattern=ID_PATTERN, max_length=MAX_ID_CHARS)
    brief: str
    brand: str
    group: str | None = None
    request: RequestParams
    assertions: list[Assertion]
    threshold: float
    tags: list[str] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)

    @field_validator("brief")
    @classmethod
    def _brief(cls, value: str) -> str:
        """What a request refuses (``GenerationRequest``), refused when the suite is read: it
        was found only as every execution of the case errored."""
        if unstorable(value):
            raise ValueError(UNSTORABLE)
        if is_blank(value):
            raise ValueError("is empty (nothing but blank or invisible characters)")
        if len(value) > MAX_BRIEF_CHARS:
            raise ValueError(f"is {len(value)} characters; the limit is {MAX_BRIEF_CHARS}")
        return value


class Suite(_Input):
    name: str
    version: int
    description: str = ""
    path: str
    fingerprint: str
    brands: list[str]
    gate: Gate
    targets: list[TargetSpec]
    cases: list[Case]

    @property
    def groups(self) -> dict[str, list[Case]]:
        out: dict[str, list[Case]] = {}
        for case in self.cases:
            if case.group:
                out.setdefault(case.group, []).append(case)
        return out


# --------------------------------------------------------------------------- results


class AttemptRecord(_Model):
    """One attempt of a case's run, as the report and the evaluators see it."""

    id: str
    iteration: int
    model: str
    template: str
    prompt: str
    negative_prompt: str = ""
    seed: int
    width: int
    height: int
    outcome: str
    composite: float | None = None
    signals: dict[str, float] = Field(default_factory=dict)
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    cache_hit: bool = False
    error: str | None = None
    moderation: dict[str, Any] | None = None
    sha256: str | None = None
    thumbnail: str | None = Field(default=None, description="file name under the run's thumbs/")
    receipt: dict[str, Any] = Field(default_factory=dict)


class AssertionResult(_Model):
    kind: str
    passed: bool
    weight: float
    value: float | None = None
    threshold: float | None = None
    message: str


class RepairRecord(_Model):
    """One repair the agent applied in the case's run and whether the next round fixed it."""

    action: str
    signal: str
    model: str
    fixed: bool


class CaseResult(_Model):
    """What one execution (target x case x repeat) produced; written atomically to the run dir."""

    target: str
    case_id: str
    repeat: int
    group: str | None = None
    tenant: str
    run_id: str | None = None
    status: str
    reason: str = ""
    error: str | None = None
    count: int = 1
    accepted: int = 0
    accepted_composites: list[float] = Field(default_factory=list)
    accepted_signals: list[dict[str, float]] = Field(default_factory=list)
    attempts: list[AttemptRecord] = Field(default_factory=list)
    repairs: list[RepairRecord] = Field(default_factory=list)
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    provider_ms: float = 0.0
    fallback: bool = False
    #: the review policy production applies to the case's brand (``always (brand
    #: acme-coffee)``), which this eval run did not: an eval run is never held for review
    review_not_applied: str | None = None
    pii_found: list[str] = Field(default_factory=list)
    histograms: list[list[float]] = Field(default_factory=list)
    assertions: list[AssertionResult] = Field(default_factory=list)
    score: float = 0.0
    passed: bool = False
    finished_at: str = ""
