"""Shared pieces of the agent tests: a counting provider and a registered brand."""

from __future__ import annotations

from pathlib import Path

from brandloop.domain import ModerationVerdict
from brandloop.policies.brandkit import load_brand_kit
from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.backends import steady_procedural

ROOT = Path(__file__).resolve().parents[2]
AUTUMN = (ROOT / "examples" / "briefs" / "autumn-sale.txt").read_text().strip()
PRICES = {"draft": 0.01, "studio": 0.04}


class CountingProvider:
    """The procedural provider behind a call counter: what a paid backend's ledger would show."""

    name = "procedural"

    def __init__(self) -> None:
        self.inner = steady_procedural()
        self.calls: list[ImageRequest] = []

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.calls.append(request)
        return await self.inner.generate(request)

    def billed(self) -> float:
        return sum(PRICES[c.model] * c.count for c in self.calls)


def allow(_data: bytes) -> ModerationVerdict:
    return ModerationVerdict(allowed=True, source="image", reasons=["test: no detector"])


def add_acme(settings: Settings, db: Database) -> str:
    with db.session() as session:
        crud.upsert_brand(
            session, tenant="default", kit=load_brand_kit(ROOT / "examples/brands/acme-coffee.yaml")
        )
    return "Acme Coffee"
