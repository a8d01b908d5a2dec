"""Template references and the weighted label split: proportions, determinism, seeding."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from brandloop.agent.templates import ensure_shipped_templates, pick_weighted, resolve_template
from brandloop.errors import BadInputError, NotFoundError
from brandloop.policies.catalog import load_catalog
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from brandloop.templates import governance as gov
from brandloop.tools.moderation.minors import template_screen
from tests.templates.test_governance import EXAMPLE, EXAMPLE_V2

N = 20_000
#: the shipped catalog's model ids, which model hints must name
MODELS = [model.id for model in load_catalog()]


def test_split_is_deterministic_per_request_id() -> None:
    weights = {"1": 90.0, "2": 10.0}
    first = [pick_weighted(weights, f"run_{i}") for i in range(500)]
    again = [pick_weighted(dict(reversed(weights.items())), f"run_{i}") for i in range(500)]
    assert first == again


@pytest.mark.parametrize(
    "weights",
    [{"1": 90.0, "2": 10.0}, {"1": 1.0, "2": 1.0, "3": 2.0}, {"4": 0.95, "7": 0.05}],
)
def test_split_proportions_match_the_weights(weights: dict[str, float]) -> None:
    counts = Counter(pick_weighted(weights, f"run_{i:08x}") for i in range(N))
    total = sum(weights.values())
    for version, weight in weights.items():
        p = weight / total
        # within 4 standard deviations of a binomial(N, p)
        assert abs(counts[int(version)] - N * p) < 4 * math.sqrt(N * p * (1 - p))
    assert set(counts) == {int(v) for v in weights}


def test_single_version_label_always_picks_it() -> None:
    assert {pick_weighted({"3": 1.0}, f"r{i}") for i in range(100)} == {3}


def test_references_resolve_and_runs_split_across_the_canary(
    settings: Settings, db: Database
) -> None:
    with db.session() as session:
        ensure_shipped_templates(session, tenant="t")
        ensure_shipped_templates(session, tenant="t")  # idempotent
        seeded = resolve_template(session, tenant="t", ref=None, request_id="r")
        assert (seeded.ref, seeded.status) == ("brand-hero@1", "approved")
        gov.create_template(
            session,
            tenant="t",
            name="seasonal-banner",
            spec=gov.load_spec(EXAMPLE),
            actor="ana",
            screen=template_screen,
            models=MODELS,
        )
        gov.new_version(
            session,
            tenant="t",
            name="seasonal-banner",
            spec=gov.load_spec(EXAMPLE_V2),
            actor="ana",
            message="v2",
            screen=template_screen,
            models=MODELS,
        )
        for version in (1, 2):
            gov.submit(session, tenant="t", name="seasonal-banner", version=version, actor="ana")
            gov.approve(session, tenant="t", name="seasonal-banner", version=version, actor="lee")
        gov.move_label(
            session,
            tenant="t",
            name="seasonal-banner",
            label="production",
            weights={"1": 90, "2": 10},
            actor="lee",
        )
        picked = Counter(
            resolve_template(
                session, tenant="t", ref="seasonal-banner", request_id=f"run_{i}"
            ).version
            for i in range(1000)
        )
        assert 860 < picked[1] < 940 and picked[1] + picked[2] == 1000
        assert (
            resolve_template(session, tenant="t", ref="seasonal-banner@2", request_id="x").body
            == gov.load_spec(EXAMPLE_V2).body
        )
        with pytest.raises(NotFoundError, match="no label 'canary'"):
            resolve_template(session, tenant="t", ref="seasonal-banner:canary", request_id="x")
        with pytest.raises(NotFoundError, match="seasonal-banner@3 does not exist"):
            resolve_template(session, tenant="t", ref="seasonal-banner@3", request_id="x")
        with pytest.raises(BadInputError, match="is not name"):
            resolve_template(session, tenant="t", ref="Seasonal Banner", request_id="x")
        assert crud.get_template(session, tenant="other", name="seasonal-banner") is None
