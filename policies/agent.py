"""Run policy: when an image is accepted, how many rounds the agent may take, model order."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

AGENT_POLICY_PATH = Path(__file__).with_name("agent_defaults.yaml")


class AgentPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_iterations: int = Field(default=4, ge=1, le=20)
    max_attempts_per_image: int = Field(default=4, ge=1, le=20)
    accept_composite: float = Field(default=0.6, ge=0, le=1)
    require_all_signals: bool = True


def load_agent_policy(path: Path = AGENT_POLICY_PATH) -> AgentPolicy:
    return AgentPolicy.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
