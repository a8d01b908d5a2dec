"""Agent tests never reach a real chat model: building one fails the test (see agent.writer)."""

from __future__ import annotations

import pytest

import agent.writer


@pytest.fixture(autouse=True)
def _no_real_chat_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent.writer, "ALLOW_MODEL_REQUESTS", False)
