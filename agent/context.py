"""Per-run context: the tools and knobs a run uses, handed to every node, never checkpointed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from brandloop.agent.writer import PromptWriter
from brandloop.artifacts import ArtifactStore
from brandloop.domain import ModelSpec, ModerationVerdict
from brandloop.memory.store import BrandMemory
from brandloop.policies.agent import AgentPolicy
from brandloop.policies.brand_policy import BrandRunPolicy
from brandloop.policies.scoring import ScoringPolicy
from brandloop.providers import ImageProvider
from brandloop.registry.crud import add_event
from brandloop.registry.db import Database
from brandloop.registry.types import usd
from brandloop.tools.credentials import ContentSigner
from brandloop.tools.moderation.hosted import HostedModerator
from brandloop.tools.moderation.policy import ModerationPolicy, default_moderation_policy

log = logging.getLogger(__name__)

#: Every kind of entry a run's trace holds (``RunContext.emit``): the job's event stream names
#: its events after them (``brandloop.api.jobs.service.SSE_EVENTS``, docs/http-api.md "Events").
TraceKind = Literal[
    "decision",
    "provider_call",
    "attempt_started",
    "attempt_finished",
    "moderation",
    "scored",
    "unreadable",
    "repair_outcome",
    "accepted",
    "drift",
    "done",
    "remembered",
]
EventSink = Callable[[str, str, dict[str, Any]], None]
ImageModerator = Callable[[bytes], ModerationVerdict]


@dataclass
class RunContext:
    db: Database
    tenant: str
    providers: dict[str, ImageProvider]
    models: list[ModelSpec]
    artifacts: ArtifactStore
    scoring: ScoringPolicy
    policy: AgentPolicy
    budget_usd: float
    image_moderator: ImageModerator
    signer: ContentSigner
    memory: BrandMemory | None = None
    campaign_id: str | None = None
    on_event: EventSink | None = None
    use_cache: bool = True
    writer: PromptWriter | None = None
    provider_intervals: list[tuple[float, float]] = field(default_factory=list)
    brand_policy: BrandRunPolicy = field(default_factory=BrandRunPolicy)
    #: The brand's moderation policy (``moderation:`` in its policy file over the defaults).
    moderation: ModerationPolicy = field(default_factory=default_moderation_policy)
    #: The hosted moderation service, when configured: run in addition to the offline layers.
    hosted_moderator: HostedModerator | None = None
    #: The process's configured credentials (``brandloop.settings.credentials_to_redact``: the
    #: keys, and the passwords and key-named query values of the ``*_URL`` settings): redacted
    #: from everything a provider says back (``tools/providers/_http.py`` ``redact_returned``,
    #: ``redact_error``) before it is traced, logged or stored.
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def provider_busy_seconds(self) -> float:
        """Wall time during which at least one provider call was in flight (overlaps merged)."""
        total, end = 0.0, float("-inf")
        for start, stop in sorted(self.provider_intervals):
            if start > end:
                total += stop - start
                end = stop
            elif stop > end:
                total += stop - end
                end = stop
        return total

    def model(self, model_id: str) -> ModelSpec:
        for spec in self.models:
            if spec.id == model_id:
                return spec
        raise KeyError(model_id)

    def emit(self, run_id: str, node: str, kind: TraceKind, payload: dict[str, Any]) -> None:
        """Append an event to the run's trace, log it, and tell whoever is watching."""
        with self.db.session() as session:
            add_event(session, run_id=run_id, node=node, kind=kind, payload=payload)
        ids = {"run_id": run_id, "node": node, "kind": kind}
        if kind == "decision":  # the why of the run at INFO, provider calls too; the rest DEBUG
            log.info("%s: %s", payload.get("action"), payload.get("reason"), extra=ids)
        elif kind == "provider_call":
            outcome = payload.get("error") or usd(payload.get("cost_usd", 0.0))
            log.info("provider call %s: %s", payload.get("model"), outcome, extra=ids)
        else:
            log.debug("%s %s", node, kind, extra=ids)
        if self.on_event is not None:
            self.on_event(node, kind, payload)
