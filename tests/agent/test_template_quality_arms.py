"""How a template's params enter a plan (``agent/nodes/plan.py``): the agent's own keys win over
the template's, a field brandloop sets itself never passes, and a template's ``quality``
narrows the arms unless the diagnosis raised quality above it (docs/templates.md)."""

from __future__ import annotations

from brandloop.agent.bandit import Arm, arms
from brandloop.agent.nodes.plan import call_params, template_arms
from brandloop.domain import TemplateVersion
from brandloop.policies.catalog import load_catalog

BODY = "{{ brief }}. {{ palette_clause }}."
CATALOG = {m.id: m for m in load_catalog()}
MINI = CATALOG["openai/gpt-image-1-mini"]
STUDIO = CATALOG["procedural/studio"]


def test_the_agents_own_keys_win_and_reserved_keys_never_pass() -> None:
    # a version stored before params were checked may hold a key brandloop sets itself
    old = TemplateVersion(
        name="t", version=1, body=BODY, params={"quality": "low", "steps": 30, "seed": 9}
    )
    assert call_params(old, Arm(MINI, "high"), {}) == {"quality": "high", "steps": 30}
    writer = {"writer": {"provider": "openai", "model": "gpt-4o-mini"}}
    assert call_params(old, Arm(STUDIO), writer) == {"steps": 30, **writer}
    # in any case: a provider that ignores case would take Seed for seed
    cased = old.model_copy(
        update={"params": {"Seed": 9, "SIZE": "1x1", "Quality": "low", "steps": 30}}
    )
    assert call_params(cased, Arm(MINI, "high"), {}) == {"quality": "high", "steps": 30}


def test_a_diagnosis_that_raises_quality_overrides_a_lower_template_setting() -> None:
    template = TemplateVersion(name="t", version=1, body=BODY, params={"quality": "low"})
    plain = arms([STUDIO, MINI])
    narrowed, note = template_arms(template, [STUDIO, MINI], plain, boost=0)
    assert narrowed == [Arm(MINI, "low")] and note == "template t@1 sets quality low"
    raised = arms([STUDIO, MINI], min_boost=1)
    kept, note = template_arms(template, [STUDIO, MINI], raised, boost=1)
    assert kept == raised and [a.quality for a in kept if a.model == MINI] == ["high"]
    assert note == (
        "template t@1 sets quality low, overridden: the diagnosis raised quality after "
        "1 soft round(s), to high"
    )
    high = TemplateVersion(name="t", version=1, body=BODY, params={"quality": "high"})
    assert template_arms(high, [STUDIO, MINI], raised, boost=1)[0] == [Arm(MINI, "high")]
    nowhere = TemplateVersion(name="t", version=1, body=BODY, params={"quality": "ultra"})
    assert template_arms(nowhere, [STUDIO, MINI], plain, boost=0) == (
        plain,
        "template t@1 sets quality ultra, which no usable model has: planned without it",
    )
