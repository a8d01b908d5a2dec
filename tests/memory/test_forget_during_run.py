"""A style note forgotten while a run that recalled it is in flight: the run's prompts carry
its text, and were remembered after the forget (an outside tester deleted a note 0.3 s into a
run of two images and found the note's text in `memory search` after the run)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from brandloop.agent.runner import open_memory, run_generation
from brandloop.domain import GenerationRequest
from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.agent.helpers import CountingProvider, add_acme
from tests.memory.test_memory_cli import brand_id_of

SECRET = "zanzibar quokkastein lighting"


class ForgettingProvider(CountingProvider):
    """The procedural provider, while someone forgets a note as the first image is made:
    after the run recalled the note, before it remembers its prompts."""

    def __init__(self, forget: Callable[[], object]) -> None:
        super().__init__()
        self.forget: Callable[[], object] | None = forget

    async def generate(self, request: ImageRequest) -> ImageResult:
        if self.forget is not None:
            self.forget()
            self.forget = None
        return await super().generate(request)


async def _run(settings: Settings, db: Database, provider: CountingProvider) -> list[str]:
    """Run two images of the brief; the actions remember decided (its events: the run's
    result is settled at finalize, before remember)."""
    actions: list[str] = []

    def on_event(node: str, kind: str, payload: dict[str, Any]) -> None:
        if node == "remember" and kind == "decision":
            actions.append(str(payload["action"]))

    request = GenerationRequest(brief="a latte on a counter", brand="Acme Coffee", count=2,
                                size="64x64", seed=5)  # fmt: skip
    result = await run_generation(request, settings=settings, db=db, on_event=on_event,
                                  providers={"procedural": provider})  # fmt: skip
    assert len(result.images) == 2
    assert all(SECRET in a.prompt for a in result.images)  # the run did carry the note
    return actions


def _prompts(settings: Settings) -> list[str]:
    memory = open_memory(settings)
    brand = brand_id_of(settings, "Acme Coffee")
    hits = memory.search(tenant="default", brand=brand, query="latte counter", k=50)
    return [hit.text for hit in hits if hit.kind == "prompt"]


async def test_a_note_forgotten_during_a_run_is_not_remembered_with_its_prompts(
    settings: Settings, db: Database
) -> None:
    add_acme(settings, db)
    memory = open_memory(settings)
    brand = brand_id_of(settings, "Acme Coffee")
    note = memory.add_note(tenant="default", brand=brand, text=SECRET)

    def forget() -> int:
        return memory.forget(tenant="default", brand=brand, record_id=note)

    actions = await _run(settings, db, ForgettingProvider(forget))

    assert [t for t in _prompts(settings) if SECRET in t] == [], actions
    assert "not_kept" in actions
    assert [text for text in _prompts(settings) if SECRET in text] == []


async def test_a_note_kept_through_the_run_is_remembered_and_forgotten_with_its_prompts(
    settings: Settings, db: Database
) -> None:
    add_acme(settings, db)
    memory = open_memory(settings)
    brand = brand_id_of(settings, "Acme Coffee")
    note = memory.add_note(tenant="default", brand=brand, text=SECRET)

    actions = await _run(settings, db, CountingProvider())

    assert "not_kept" not in actions
    assert len([text for text in _prompts(settings) if SECRET in text]) == 2
    assert memory.forget(tenant="default", brand=brand, record_id=note) == 3
    assert _prompts(settings) == []
