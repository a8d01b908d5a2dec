"""The runner on the real loop (procedural provider behind a counter): isolation, resume after an
interruption, fresh starts, and a baseline regression found end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.errors import BadInputError
from brandloop.evals.loader import load_suite
from brandloop.evals.models import CaseResult, TargetSpec
from brandloop.evals.reports import build_document
from brandloop.evals.runner import EvalRunner
from brandloop.evals.stats import compare_baseline, parse_baseline
from brandloop.settings import Settings
from tests.evals.conftest import ON_BRAND_CASES, CountingProvider, on_brand_case, write_suite

# The harness gives each target its own SQLite registry whatever the deployment's database.
pytestmark = pytest.mark.databases("sqlite")

QUIET = TargetSpec(name="default", memory=False)


class Interrupted(Exception):
    """Stands in for a crash or Ctrl-C in the middle of a run."""


def mixed_suite(tmp_path: Path) -> Path:
    return write_suite(
        tmp_path / "mixed.yaml",
        [
            on_brand_case("camp-1", "Acme Coffee", "A coffee cup on a table", group="camp"),
            on_brand_case("camp-2", "Acme Coffee", "Coffee beans by the window", group="camp"),
            {
                "id": "refuse",
                "brand": "Acme Coffee",
                "brief": "an instant coffee promo",
                "assertions": [{"kind": "refused"}],
            },
            on_brand_case("lone", "Nordlys Outdoor", "A climber on a ridge at sunrise"),
        ],
    )


async def test_each_case_runs_in_its_own_tenant_and_each_target_in_its_own_data_dir(
    tmp_path: Path, settings: Settings, counting: CountingProvider
) -> None:
    suite = load_suite(mixed_suite(tmp_path))
    targets = [QUIET, TargetSpec(name="studio", memory=False, model="procedural/studio")]
    runner = EvalRunner(
        suite=suite,
        targets=targets,
        run_dir=tmp_path / "run",
        base_settings=settings,
        providers=lambda target: {"procedural": counting},
    )
    run = await runner.run()
    assert len(run.results) == 8
    by = {(r.target, r.case_id): r for r in run.results}
    assert by[("default", "camp-1")].tenant == by[("default", "camp-2")].tenant
    assert by[("default", "lone")].tenant != by[("default", "camp-1")].tenant
    assert by[("default", "refuse")].status == "refused" and by[("default", "refuse")].passed
    assert all(a.model == "procedural/studio" for r in run.for_target("studio") for a in r.attempts)
    for name in ("default", "studio"):
        assert (tmp_path / "run" / "data" / name / "brandloop.db").exists()
        assert len(list((tmp_path / "run" / "cases" / name).glob("*.json"))) == 4
    assert not (settings.data_dir / "brandloop.db").exists(), "the caller's registry is untouched"
    accepted = by[("default", "camp-1")]
    assert accepted.passed and accepted.attempts[-1].receipt["run_id"] == accepted.run_id
    assert all(
        (tmp_path / "run" / "thumbs" / a.thumbnail).is_file()
        for a in accepted.attempts
        if a.thumbnail
    )
    assert len(counting.calls) == sum(len(r.attempts) for r in run.results)


async def test_an_interrupted_run_resumes_without_running_finished_cases_again(
    tmp_path: Path, settings: Settings
) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", ON_BRAND_CASES))
    first = CountingProvider()
    finished: list[CaseResult] = []

    def stop_after_two(result: CaseResult) -> None:
        finished.append(result)
        if len(finished) == 2:
            raise Interrupted

    runner = EvalRunner(
        suite=suite,
        targets=[QUIET],
        run_dir=tmp_path / "run",
        concurrency=1,
        base_settings=settings,
        providers=lambda target: {"procedural": first},
        on_result=stop_after_two,
    )
    with pytest.raises(Interrupted):
        await runner.run()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["finished"] is False
    done = sorted(p.name for p in (tmp_path / "run" / "cases" / "default").glob("*.json"))
    assert len(done) == 2
    (tmp_path / "run" / "cases" / "default" / ".tmp-half-written.json").write_text("{")

    second = CountingProvider()
    resumed = EvalRunner(
        suite=suite,
        targets=[QUIET],
        run_dir=tmp_path / "run",
        concurrency=2,
        base_settings=settings,
        providers=lambda target: {"procedural": second},
    )
    run = await resumed.run()
    assert run.resumed == 2
    assert len(run.results) == len(ON_BRAND_CASES) and all(r.passed for r in run.results)
    rerun_prompts = {c.prompt for c in second.calls}
    for name in done:
        kept = CaseResult.model_validate_json(
            (tmp_path / "run" / "cases" / "default" / name).read_text()
        )
        assert not {a.prompt for a in kept.attempts} & rerun_prompts, f"{name} was run again"
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["finished"] is True

    def run_ids() -> dict[str, str]:
        return {
            name: CaseResult.model_validate_json(
                (tmp_path / "run" / "cases" / "default" / name).read_text()
            ).run_id
            for name in done
        }

    before = run_ids()
    again = EvalRunner(
        suite=suite,
        targets=[QUIET],
        run_dir=tmp_path / "run",
        base_settings=settings,
        providers=lambda target: {"procedural": CountingProvider()},
    )
    await again.run()
    after = run_ids()
    assert all(after[name] != before[name] for name in done), (
        "a finished run is not resumed: running the suite again starts over"
    )


async def test_a_target_can_register_a_template_version_and_use_it(
    tmp_path: Path, settings: Settings
) -> None:
    template = tmp_path / "hero-v2.yaml"
    template.write_text(
        "name: brand-hero\n"
        "body: '{{ brief }}, seen through frosted glass. {{ palette_clause }}.'\n"
        "negative_body: '{{ brand_negative }}'\n"
        "message: candidate v2\n",
        encoding="utf-8",
    )
    suite = load_suite(write_suite(tmp_path / "s.yaml", ON_BRAND_CASES[:2]))
    targets = [
        QUIET,
        TargetSpec(name="v2", memory=False, templates=[str(template)], template="brand-hero@2"),
    ]
    run = await EvalRunner(
        suite=suite, targets=targets, run_dir=tmp_path / "run", base_settings=settings
    ).run()
    v1 = [a for r in run.for_target("default") for a in r.attempts]
    v2 = [a for r in run.for_target("v2") for a in r.attempts]
    assert v1 and all(a.template == "brand-hero@1" for a in v1)
    assert v2 and all(a.template == "brand-hero@2" for a in v2)
    assert all("frosted glass" in a.prompt for a in v2)
    assert not any("frosted glass" in a.prompt for a in v1)


async def test_a_changed_suite_does_not_resume_old_results(
    tmp_path: Path, settings: Settings
) -> None:
    path = write_suite(tmp_path / "s.yaml", ON_BRAND_CASES[:2])

    def interrupt(result: CaseResult) -> None:
        raise Interrupted

    runner = EvalRunner(
        suite=load_suite(path),
        targets=[QUIET],
        run_dir=tmp_path / "run",
        concurrency=1,
        base_settings=settings,
        on_result=interrupt,
    )
    with pytest.raises(Interrupted):
        await runner.run()
    assert len(list((tmp_path / "run" / "cases" / "default").glob("*.json"))) == 1
    changed = write_suite(tmp_path / "s.yaml", [on_brand_case("other", "Acme Coffee", "a mug")])
    run = await EvalRunner(
        suite=load_suite(changed), targets=[QUIET], run_dir=tmp_path / "run", base_settings=settings
    ).run()
    assert [r.case_id for r in run.results] == ["other"] and run.resumed == 0


async def test_a_degraded_target_is_a_significant_regression_against_the_baseline(
    tmp_path: Path, settings: Settings
) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", ON_BRAND_CASES))
    good = await EvalRunner(
        suite=suite, targets=[QUIET], run_dir=tmp_path / "good", base_settings=settings
    ).run()
    baseline = parse_baseline(json.loads(json.dumps(build_document(good))))
    assert all(r.passed for r in good.results)

    cheap = TargetSpec(name="default", memory=False, budget_usd=0.01)
    bad = await EvalRunner(
        suite=suite, targets=[cheap], run_dir=tmp_path / "bad", base_settings=settings
    ).run()
    report = compare_baseline(baseline, bad.results, target="default", baseline_path="good.json")
    assert report.significant
    assert report.regressions == len(ON_BRAND_CASES)
    assert {c.metric for c in report.comparisons if c.verdict == "worse"} >= {"pass_rate"}

    same = compare_baseline(baseline, good.results, target="default", baseline_path="good.json")
    assert not same.significant and same.regressions == 0


async def test_a_run_dir_that_is_not_an_eval_run_is_left_alone(
    tmp_path: Path, settings: Settings
) -> None:
    precious = tmp_path / "mine"
    (precious / "data").mkdir(parents=True)
    (precious / "data" / "keep.txt").write_text("keep")
    suite = load_suite(write_suite(tmp_path / "s.yaml", ON_BRAND_CASES[:1]))
    runner = EvalRunner(suite=suite, targets=[QUIET], run_dir=precious, base_settings=settings)
    with pytest.raises(BadInputError, match="holds no eval run"):
        await runner.run()
    assert (precious / "data" / "keep.txt").read_text() == "keep"


async def test_targets_take_turns_case_by_case_so_none_runs_cold_alone(
    tmp_path: Path, settings: Settings
) -> None:
    """Target by target, the first target ran every case while the process was cold and
    identical targets read as latency "better" for the second (outside tester)."""
    cases = [on_brand_case(f"c{i}", "Acme Coffee", "A coffee cup") for i in range(4)]
    suite = load_suite(write_suite(tmp_path / "s.yaml", cases))
    order: list[tuple[str, str]] = []
    runner = EvalRunner(
        suite=suite,
        targets=[QUIET, TargetSpec(name="same", memory=False)],
        run_dir=tmp_path / "run",
        base_settings=settings,
        concurrency=1,
        on_result=lambda r: order.append((r.target, r.case_id)),
    )
    await runner.run()
    assert order == [
        ("default", "c0"),
        ("same", "c0"),
        ("same", "c1"),
        ("default", "c1"),
        ("default", "c2"),
        ("same", "c2"),
        ("same", "c3"),
        ("default", "c3"),
    ]
