"""The run state the graph passes between nodes, and the narrow input callers may set."""

from __future__ import annotations

import operator
from typing import Annotated, Literal, TypedDict

from brandloop.domain import (
    Attempt,
    BrandKit,
    Candidate,
    Decision,
    GenerationRequest,
    RunStatus,
    StopCause,
    TemplateVersion,
)


def merge_attempts(left: dict[str, Attempt], right: dict[str, Attempt]) -> dict[str, Attempt]:
    """Attempts are keyed by id: a later node's copy of an attempt replaces the earlier one."""
    return {**left, **right}


class Repair(TypedDict):
    """One repair the diagnosis applied: which action, for which failed signal, in which
    round, and (once the next round is judged) whether it fixed that signal."""

    action: str
    signal: str
    round: int
    model: str
    fixed: bool | None


class RunInput(TypedDict):
    """What a caller provides to start a run."""

    run_id: str
    request: GenerationRequest


class RunState(RunInput, total=False):
    brand: BrandKit
    brand_id: str | None
    template: TemplateVersion
    style_notes: list[str]
    style_note_ids: list[str]  # the memory ids of the recalled style notes, for remember
    recalled_seeds: list[int]
    emphasis: Literal["normal", "strong"]
    modifiers: list[str]
    model_index: int
    excluded_models: list[str]
    quality_boost: int
    anchor_colours: list[str]
    accents: list[str]
    accent_hexes: list[str]
    avoid_colours: list[str]
    clarification: str
    stop_cause: StopCause
    repairs: list[Repair]
    recalled_models: list[str]
    request_key: str | None
    seed_cursor: int  # an unseeded run's next seed; a seeded one derives its own (round_seed)
    iteration: int
    candidates: list[Candidate]
    attempts: Annotated[dict[str, Attempt], merge_attempts]
    decisions: Annotated[list[Decision], operator.add]
    accepted: list[str]
    spent_usd: float
    status: RunStatus
    reason: str
    redactions: list[str]
    review: dict[str, str]
