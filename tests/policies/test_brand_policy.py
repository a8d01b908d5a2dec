"""Per-brand scoring policy: overrides merged over the defaults, and used by a real run."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandloop.agent.runner import brand_scoring_policy
from brandloop.domain import GenerationRequest
from brandloop.errors import BadInputError
from brandloop.policies.brand_policy import load_brand_scoring_policy
from brandloop.policies.brandkit import load_brand_kit
from brandloop.policies.scoring import load_scoring_policy
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "brands"


def test_a_brand_without_a_file_gets_the_defaults() -> None:
    assert load_brand_scoring_policy("no-such-brand") == load_scoring_policy()


def test_the_packaged_brand_file_overrides_only_what_it_names() -> None:
    defaults = load_scoring_policy()
    nordlys = load_brand_scoring_policy("nordlys-outdoor")
    assert nordlys.sharpness.weight == 0.3 and nordlys.sharpness.threshold == 0.6
    assert nordlys.sharpness.variance_scale == defaults.sharpness.variance_scale
    assert nordlys.palette == defaults.palette


def test_a_deployment_file_wins_and_bad_values_name_the_field(tmp_path: Path) -> None:
    (tmp_path / "nordlys-outdoor.yaml").write_text("scoring:\n  palette: {threshold: 0.8}\n")
    policy = load_brand_scoring_policy("nordlys-outdoor", search=[tmp_path])
    assert policy.palette.threshold == 0.8 and policy.sharpness.threshold == 0.5
    (tmp_path / "nordlys-outdoor.yaml").write_text("scoring:\n  palette: {threshold: 7}\n")
    with pytest.raises(BadInputError, match=r"scoring\.palette\.threshold"):
        load_brand_scoring_policy("nordlys-outdoor", search=[tmp_path])


def test_a_run_scores_with_its_brand_policy(settings: Settings, db: Database) -> None:
    with db.session() as session:
        for name in ("nordlys-outdoor", "acme-coffee"):
            crud.upsert_brand(
                session, tenant="default", kit=load_brand_kit(EXAMPLES / f"{name}.yaml")
            )
    nordlys = brand_scoring_policy(
        settings, db, GenerationRequest(brief="x", brand="Nordlys Outdoor")
    )
    acme = brand_scoring_policy(settings, db, GenerationRequest(brief="x", brand="Acme Coffee"))
    assert nordlys.sharpness.threshold == 0.6 and acme.sharpness.threshold == 0.5
