"""The drift detector on synthetic score streams, and the registry's drift events."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy.orm import Session

from brandloop.domain import Attempt, Candidate, Scores, TemplateVersion
from brandloop.policies.drift import load_drift_policy
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from brandloop.templates import drift
from brandloop.templates.cusum import DriftPolicy, scan
from tests.api.test_cli import run_cli

POLICY = load_drift_policy()


def noise(seed: int, n: int = 200, mean: float = 0.7, sd: float = 0.05) -> list[float]:
    return np.clip(np.random.default_rng(seed).normal(mean, sd, n), 0, 1).tolist()


def test_the_shipped_policy_states_its_parameters() -> None:
    assert DriftPolicy(method="cusum", baseline_size=50, k=0.75, h=10.0, min_std=0.02) == POLICY


def test_quiet_on_noise_in_200_seeded_streams() -> None:
    alarms = sum(len(scan(noise(seed), POLICY).alarms) for seed in range(200))
    assert alarms == 0


@pytest.mark.parametrize("sd", [0.01, 0.05, 0.1])
def test_quiet_on_noise_of_any_scale(sd: float) -> None:
    assert sum(bool(scan(noise(1000 + s, sd=sd), POLICY).alarms) for s in range(50)) == 0


def test_quiet_on_a_constant_stream() -> None:
    result = scan([0.8] * 300, POLICY)
    assert result.alarms == [] and result.baseline_mean == 0.8 and result.statistic == 0.0


def test_fires_on_a_real_drop_soon_after_it_starts() -> None:
    delays = []
    for seed in range(50):
        stream = noise(seed, 80) + noise(5000 + seed, 60, mean=0.6)  # a 2-σ drop at index 80
        alarms = scan(stream, POLICY).alarms
        assert alarms, f"seed {seed}: no alarm"
        first = alarms[0]
        assert first.index >= 80, f"seed {seed}: fired before the drop"
        assert first.recent_mean < first.baseline_mean - 0.05
        delays.append(first.index - 79)
    assert max(delays) <= 25 and np.mean(delays) < 12


def test_an_improvement_never_fires() -> None:
    stream = noise(7, 80) + noise(8, 100, mean=0.9)
    assert scan(stream, POLICY).alarms == []


def test_a_drop_fires_once_then_rebaselines() -> None:
    stream = noise(3, 60) + noise(4, 200, mean=0.5)
    result = scan(stream, POLICY)
    assert len(result.alarms) == 1  # the new level becomes the next baseline
    assert result.baseline_mean is not None and abs(result.baseline_mean - 0.5) < 0.03


def _attempt(i: int, composite: float, template: str = "brand-hero@1") -> Attempt:
    return Attempt(
        id=f"att-{i:04d}",
        candidate=Candidate(
            id=f"att-{i:04d}",
            template=template,
            prompt="p",
            model="procedural/draft",
            seed=i,
            width=64,
            height=64,
        ),
        outcome="rejected",
        idempotency_key=f"key-{i:04d}",
        scores=Scores(composite=composite),
    )


def _store_stream(session: Session, scores: list[float], template: str = "brand-hero@1") -> None:
    crud.create_run(
        session,
        run_id="run_drift",
        tenant="default",
        brand_id=None,
        brand_name="b",
        brief="b",
        request={},
    )
    for i, value in enumerate(scores):
        crud.upsert_attempt(session, run_id="run_drift", attempt=_attempt(i, value, template))


def test_registry_records_one_event_per_alarm_idempotently(
    settings: Settings, db: Database
) -> None:
    with db.session() as session:
        _store_stream(session, noise(11, 60) + noise(12, 40, mean=0.55))
        first = drift.observe_run(session, tenant="default", run_id="run_drift", policy=POLICY)
        again = drift.observe_all(session, tenant="default", policy=POLICY)
        events = drift.list_events(session, tenant="default", template="brand-hero")
        assert len(first) == 1 and again == [] and len(events) == 1
        event = drift.event_dict(events[0])
        assert event["template"] == "brand-hero@1" and event["model"] == "procedural/draft"
        assert event["method"] == "cusum" and event["statistic"] > event["threshold"] == 10.0
        assert event["recent_mean"] < event["baseline_mean"]
        assert drift.list_events(session, tenant="default", template="other") == []
        [baseline] = drift.list_baselines(session, tenant="default")
        assert baseline.template_ref == "brand-hero@1"


def test_registry_stays_quiet_on_noise(settings: Settings, db: Database) -> None:
    with db.session() as session:
        _store_stream(session, noise(21, 150))
        assert drift.observe_all(session, tenant="default", policy=POLICY) == []
        [baseline] = drift.list_baselines(session, tenant="default")
        assert baseline.baseline_n == 50 and baseline.monitored_n == 100


def _store_named_stream(session: Session, template: str, scores: list[float]) -> None:
    """A run of ``template`` (a version of a template the tenant has) with one scored attempt
    per score."""
    name, version = template.split("@")
    crud.add_template_version(
        session,
        tenant="default",
        version=TemplateVersion(name=name, version=int(version), body="b"),
    )
    run_id = f"run_{name}"
    crud.create_run(
        session, run_id=run_id, tenant="default", brand_id=None, brand_name="b", brief="b",
        request={},
    )  # fmt: skip
    for i, value in enumerate(scores):
        attempt = _attempt(i, value, template).model_copy(
            update={"id": f"{name}-{i:04d}", "idempotency_key": f"{name}-{i:04d}"}
        )
        crud.upsert_attempt(session, run_id=run_id, attempt=attempt)


def test_drift_list_by_name_lists_that_template_only_though_it_holds_a_like_wildcard(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    """``_`` in a name matched any character as a LIKE pattern: ``--template a_b`` listed the
    events of ``axb`` too (an outside tester)."""
    with db.session() as session:
        for name in ("a_b@1", "axb@1", "a_@1"):
            _store_named_stream(session, name, noise(11, 60) + noise(12, 40, mean=0.55))
    for name, alone in (("a_b", "a_b@1"), ("a_", "a_@1"), ("axb", "axb@1")):
        code, out, err = run_cli(capsys, "drift", "list", "--template", name, "--json")
        assert code == 0, err
        document = json.loads(out)
        assert {e["template"] for e in document["events"]} == {alone}, document["events"]
        assert {b["template"] for b in document["baselines"]} == {alone}
