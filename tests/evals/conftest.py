"""Helpers for the eval harness tests: small suites over the example brands, a counting
provider (the procedural renderer behind a call counter, as a paid backend's ledger would be)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from brandloop.providers import ImageRequest, ImageResult
from tests.backends import steady_procedural

ROOT = Path(__file__).resolve().parents[2]
BRANDS = ROOT / "examples" / "brands"


class CountingProvider:
    name = "procedural"

    def __init__(self) -> None:
        self.inner = steady_procedural()
        self.calls: list[ImageRequest] = []

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.calls.append(request)
        return await self.inner.generate(request)


def write_suite(path: Path, cases: list[dict[str, Any]], **extra: Any) -> Path:
    document: dict[str, Any] = {
        "name": "mini",
        "version": 1,
        "brands": [str(p) for p in sorted(BRANDS.glob("*.yaml"))],
        "defaults": {"request": {"size": "128x128", "budget_usd": 0.5, "seed": 3}},
        "cases": cases,
        **extra,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def on_brand_case(case_id: str, brand: str, brief: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": case_id,
        "brand": brand,
        "brief": brief,
        "assertions": [
            {"kind": "accepted"},
            {"kind": "min_score", "signal": "composite", "min": 0.6},
        ],
        **extra,
    }


ON_BRAND_CASES = [
    on_brand_case("acme-cup", "Acme Coffee", "A steaming coffee cup on a wooden table"),
    on_brand_case("acme-beans", "Acme Coffee", "Coffee beans spilling from a paper bag"),
    on_brand_case("bloom-serum", "Bloom Skincare", "A serum bottle among fresh petals"),
    on_brand_case("bloom-shelf", "Bloom Skincare", "A glass jar on a bathroom shelf"),
    on_brand_case("nordlys-ridge", "Nordlys Outdoor", "A climber on a ridge at sunrise"),
    on_brand_case("nordlys-tent", "Nordlys Outdoor", "A tent on a snowy ridge at first light"),
]


@pytest.fixture
def counting() -> CountingProvider:
    return CountingProvider()
