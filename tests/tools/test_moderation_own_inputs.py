"""The text gate never blocks what brandloop itself writes into a prompt: every phrase of the
composer and the diagnosis, the example brands' palette clauses and the example briefs."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandloop.policies.brandkit import load_brand_kit
from brandloop.tools.composer import palette_clause
from brandloop.tools.moderation.text import moderate_text
from tests.tools.test_procedural import PHRASES

ROOT = Path(__file__).resolve().parents[2]
BRANDS = sorted((ROOT / "examples" / "brands").glob("*.yaml"))
BRIEFS = sorted((ROOT / "examples" / "briefs").glob("*.txt"))


#: snake_case literals are names (decision actions such as "stop_unpromising"), never prompt text
PROMPT_PHRASES = [p for p in PHRASES if not ("_" in p and p.isidentifier())]


def test_no_phrase_of_the_composer_or_the_diagnosis_is_blocked():
    assert len(PROMPT_PHRASES) > 30
    blocked = {
        phrase: moderate_text(phrase).reasons
        for phrase in PROMPT_PHRASES
        if not moderate_text(phrase).allowed
    }
    assert blocked == {}
    joined = ". ".join(p.strip() for p in PROMPT_PHRASES if p.strip())
    assert moderate_text(joined[:3900]).allowed


@pytest.mark.parametrize("brand_path", BRANDS, ids=lambda p: p.stem)
def test_palette_clauses_and_example_briefs_pass(brand_path: Path):
    brand = load_brand_kit(brand_path)
    for brief_path in BRIEFS:
        brief = brief_path.read_text(encoding="utf-8").strip()
        for emphasis in ("strong", "normal"):
            prompt = f"{palette_clause(brand, emphasis)}. {brief}"
            verdict = moderate_text(prompt, source="prompt")
            assert verdict.allowed, (prompt, verdict.reasons)


@pytest.mark.parametrize("brand_path", BRANDS, ids=lambda p: p.stem)
def test_every_phrase_of_the_composer_and_the_diagnosis_passes_inside_a_prompt(brand_path: Path):
    # in a whole prompt the classifier also reads each clause on its own: a phrase that rules
    # something out ("no people in revealing clothing") must not be read as a request
    brand = load_brand_kit(brand_path)
    brief = BRIEFS[0].read_text(encoding="utf-8").strip()
    head = f"{palette_clause(brand, 'strong')}. {brief}"
    blocked = {
        phrase: verdict.reasons
        for phrase in PROMPT_PHRASES
        if not (verdict := moderate_text(f"{head}, {phrase.strip()}", source="prompt")).allowed
    }
    assert blocked == {}
