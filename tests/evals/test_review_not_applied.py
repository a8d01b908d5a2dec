"""An eval run measures the agent, not the human gate: a brand whose deliveries wait for review
in production (``brand_review``) is evaluated on what its run accepted, the gate not applied
and recorded so, and the eval registry holds no run waiting for a reviewer (outside tester: the
golden suite of such a brand always failed, its run ``awaiting_review`` with nothing accepted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from brandloop.api.cli import main
from brandloop.errors import BadInputError
from brandloop.evals.loader import load_suite, parse_target
from brandloop.evals.models import TargetSpec
from brandloop.evals.runner import EvalRunner
from brandloop.registry.db import Database
from brandloop.registry.models import RunRow
from brandloop.settings import Settings
from tests.evals.conftest import CountingProvider, on_brand_case, write_suite

pytestmark = pytest.mark.databases("sqlite")

CASES = [
    on_brand_case("acme-cup", "Acme Coffee", "A steaming coffee cup on a wooden table"),
    on_brand_case("nordlys-ridge", "Nordlys Outdoor", "A climber on a ridge at sunrise"),
]


@pytest.fixture(autouse=True)
def acme_reviewed(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Acme Coffee's deliveries wait for review, as the tester set it up (after ``settings``,
    whose data dir fixture clears every ``BRANDLOOP_`` variable)."""
    policy = tmp_path / "agent.yaml"
    policy.write_text("brand_review: {acme-coffee: {mode: always}}\n", encoding="utf-8")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))


def held_runs(data_dir: Path) -> list[str]:
    """Runs of a target's registry that wait for review (what a /review queue lists)."""
    db = Database(f"sqlite:///{data_dir / 'brandloop.db'}")
    try:
        with db.session() as session:
            return list(
                session.scalars(select(RunRow.id).where(RunRow.status == "awaiting_review"))
            )
    finally:
        db.dispose()


async def test_a_reviewed_brand_is_measured_on_what_its_run_accepted(
    tmp_path: Path, settings: Settings, counting: CountingProvider
) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", CASES))
    runner = EvalRunner(
        suite=suite,
        targets=[TargetSpec(name="default", memory=False)],
        run_dir=tmp_path / "run",
        base_settings=settings,
        providers=lambda target: {"procedural": counting},
    )
    run = await runner.run()
    by = {r.case_id: r for r in run.results}
    acme = by["acme-cup"]
    assert acme.status == "succeeded" and acme.accepted == 1 and acme.passed, acme.reason
    assert acme.review_not_applied == "always (brand acme-coffee)"
    assert by["nordlys-ridge"].review_not_applied is None
    assert held_runs(tmp_path / "run" / "data" / "default") == []
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["review"] == "not applied"


def test_eval_run_passes_the_gate_of_a_reviewed_brand_and_says_the_gate_was_not_applied(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    suite = write_suite(tmp_path / "s.yaml", CASES, targets=[{"name": "default", "memory": False}])
    out, report = tmp_path / "run.json", tmp_path / "report.html"
    argv = ["--run-dir", str(tmp_path / "run"), "--json", str(out), "--report", str(report)]
    with pytest.raises(SystemExit) as exc:
        main(["eval", "run", str(suite), *argv])
    captured = capsys.readouterr()
    assert exc.value.code == 0, captured.err
    document = json.loads(out.read_text(encoding="utf-8"))
    rows = {r["case_id"]: r for r in document["cases"]}
    assert rows["acme-cup"]["status"] == "succeeded" and rows["acme-cup"]["passed"]
    assert rows["acme-cup"]["review_not_applied"] == "always (brand acme-coffee)"
    assert document["review"] == "not applied"
    html = report.read_text(encoding="utf-8")
    assert html.count("review gate not applied (production: always (brand acme-coffee))") == 1
    assert held_runs(tmp_path / "run" / "data" / "default") == []


@pytest.mark.parametrize("key", ["review", "brand_review"])
def test_a_target_that_sets_a_review_policy_is_bad_input(tmp_path: Path, key: str) -> None:
    value = "{mode: always}" if key == "review" else "{acme-coffee: {mode: always}}"
    with pytest.raises(BadInputError, match="never held for review"):
        parse_target(f"held:policy.{key}={value}", base=tmp_path)
    policy = {key: {"mode": "always"} if key == "review" else {"acme-coffee": {"mode": "always"}}}
    suite = write_suite(tmp_path / "s.yaml", CASES, targets=[{"name": "held", "policy": policy}])
    with pytest.raises(BadInputError, match="never held for review"):
        load_suite(suite)
