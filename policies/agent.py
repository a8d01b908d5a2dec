"""Run policy: when an image is accepted, how many rounds the agent may take, how it explores,
how fast it must answer, and when a human must review before anything is delivered.

The shipped defaults are ``agent_defaults.yaml``; ``BRANDLOOP_AGENT_POLICY`` names another
file of the same shape (a deployment's own, or a test's).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from brandloop.errors import BadInputError
from brandloop.policy_files import describe_validation_error, read_policy_yaml

AGENT_POLICY_PATH = Path(__file__).with_name("agent_defaults.yaml")
POLICY_ENV = "BRANDLOOP_AGENT_POLICY"

ReviewMode = Literal["never", "always", "below_score", "unapproved_template"]


class ReviewPolicy(BaseModel):
    """When accepted images wait for a human before they are delivered.

    ``below_score``: review when any accepted image's composite is below ``score_band``;
    ``unapproved_template``: review when the run's template version is not approved.
    """

    model_config = ConfigDict(extra="forbid")

    mode: ReviewMode = "never"
    score_band: float = Field(default=0.75, ge=0, le=1)


class AgentPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_iterations: int = Field(default=4, ge=1, le=20)
    max_attempts_per_image: int = Field(default=4, ge=1, le=20)
    accept_composite: float = Field(default=0.6, ge=0, le=1)
    require_all_signals: bool = True
    exploration_share: float = Field(
        default=0.25, ge=0, le=1, description="most candidates per round on a non-greedy arm"
    )
    prior_strength: float = Field(
        default=4.0, gt=0, description="pseudo-observations the catalog baseline is worth"
    )
    pool_strength: float = Field(
        default=0.0,
        ge=0,
        description="at most this many pseudo-observations what the tenant's other brands saw "
        "on an arm is worth in a brand's prior (0: each brand learns alone)",
    )
    explore_quality: bool = Field(
        default=True,
        description="the bandit's arms are each quality setting of a model, not only its "
        "default: it learns which setting buys acceptances cheapest",
    )
    latency_target_s: float | None = Field(
        default=None, gt=0, description="skip models whose observed mean latency is above this"
    )
    stop_cost_multiple: float = Field(
        default=3.0,
        gt=0,
        description="stop when the next round's expected cost per accepted image passes this "
        "many times what an accepted image has cost the brand lately (failed runs included)",
    )
    review: ReviewPolicy = Field(default_factory=ReviewPolicy)
    brand_review: dict[str, ReviewPolicy] = Field(
        default_factory=dict, description="per brand slug, overriding `review`"
    )

    def review_for(self, brand_slug: str) -> ReviewPolicy:
        return self.brand_review.get(brand_slug, self.review)


def load_agent_policy(path: Path | None = None) -> AgentPolicy:
    """The run policy from ``path`` (else ``BRANDLOOP_AGENT_POLICY``, else the shipped
    defaults); a file that cannot be read, is not YAML or does not fit is one
    :class:`BadInputError` naming it."""
    what = "agent policy"
    if path is None:
        override = os.environ.get(POLICY_ENV)
        path = Path(override) if override else AGENT_POLICY_PATH
        what = f"agent policy ({POLICY_ENV})" if override else what
    try:
        data = read_policy_yaml(path, what=what) or {}
    except OSError as exc:
        raise BadInputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return AgentPolicy.model_validate(data)
    except ValidationError as exc:
        raise BadInputError(f"{what} {path}: {describe_validation_error(exc)}") from None
