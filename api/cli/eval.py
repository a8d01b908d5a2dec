"""``brandloop eval run|validate|schema``: run a suite, gate on its pass rate, write reports."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from brandloop import event_loop
from brandloop.api.cli.app import app
from brandloop.api.cli.common import (
    Interrupted,
    check_output_file,
    check_output_folder,
    err,
    out,
    settings,
)
from brandloop.api.cli.tables import Column, Wide, show
from brandloop.artifacts import atomic_write
from brandloop.errors import BadInputError
from brandloop.evals.loader import load_suite, parse_target
from brandloop.evals.models import CaseResult, Suite, TargetSpec
from brandloop.evals.reports import build_document, build_html, build_junit
from brandloop.evals.reports.document import (
    RUN_FORMAT,
    comparisons,
    decide_verdict,
    gate_results,
    summaries,
)
from brandloop.evals.runner import (
    EvalRun,
    EvalRunner,
    check_references,
    default_run_dir,
    record_verdict,
)
from brandloop.evals.schema import render_schema
from brandloop.evals.stats import (
    MIN_PAIRS,
    BaselineDocument,
    BaselineReport,
    check_baseline_overlap,
    compare_baseline,
    gate_text,
    parse_baseline,
    pass_rate_text,
)
from brandloop.registry.types import usd

eval_app = typer.Typer(
    help="Offline evals: suites, A/B comparisons, baselines.", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")


def resolve_targets(suite: Suite, given: list[str]) -> list[TargetSpec]:
    """``--target NAME`` picks a suite target; ``--target NAME:key=value,...`` defines one."""
    if not given:
        return suite.targets
    known = {t.name: t for t in suite.targets}
    base = Path(suite.path).parent
    targets = []
    for text in given:
        if ":" not in text:
            if text not in known:
                raise BadInputError(
                    f"--target {text!r} is not a target of the suite ({', '.join(known)}); "
                    "define one with NAME:key=value,..."
                )
            targets.append(known[text])
        else:
            targets.append(parse_target(text, base=base))
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise BadInputError("--target names must be unique")
    return targets


def write_output(path: Path, data: bytes) -> None:
    """Atomically, and readable like any file the user writes (mkstemp makes it 0600)."""
    atomic_write(path, data)
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


def load_baseline(path: Path) -> BaselineDocument:
    """The saved run, checked whole before any case runs (exit 2 naming the field)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(f"baseline {path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
        raise BadInputError(f"baseline {path} is not a `brandloop eval run --json` document")
    try:
        return parse_baseline(data)
    except ValueError as exc:
        raise BadInputError(f"baseline {path}: {exc}") from None


SUMMARY_COLUMNS = (
    Column("target"),
    Column("pass"),
    Column("gate"),
    Column("imgs", justify="right"),
    Column("$/img", justify="right"),
    Column("p95 ms", justify="right"),
    Column("tries", wide=True, justify="right"),
    Column("p50 ms", wide=True, justify="right"),
    Column("refused", wide=True, justify="right"),
    Column("fallback", wide=True, justify="right"),
)


def _print_summary(run: EvalRun, baseline: BaselineReport | None, *, wide: bool = False) -> None:
    table_data = summaries(run)
    gates = gate_results(run, table_data)
    gate = run.suite.gate.min_pass_rate
    rows = [
        (
            name,
            f"{pass_rate_text(s.passed, s.executions, gate)} ({s.passed}/{s.executions})",
            Text("pass", style="green") if gates[name] else Text("FAIL", style="red"),
            str(s.accepted_images),
            "–" if s.cost_per_accepted_usd is None else usd(s.cost_per_accepted_usd),
            f"{s.latency_p95_ms:.0f}",
            f"{s.attempts_mean:.2f}",
            f"{s.latency_p50_ms:.0f}",
            f"{s.refusal_rate:.0%}",
            f"{s.fallback_rate:.0%}",
        )
        for name, s in table_data.items()
    ]
    title = f"{run.suite.name} v{run.suite.version}: {len(run.suite.cases)} cases"
    show(out, title, SUMMARY_COLUMNS, rows, wide=wide)
    for a, b, comparison in comparisons(run):
        columns = (
            Column("metric"),
            Column("B − A", justify="right"),
            Column("95% CI"),
            Column("verdict"),
            Column(a, wide=True, justify="right"),
            Column(b, wide=True, justify="right"),
        )
        ab_rows = [
            (
                c.metric,
                "–" if c.diff is None else f"{c.diff:+.4g}",
                "–" if c.ci_low is None else f"[{c.ci_low:+.4g}, {c.ci_high:+.4g}]",
                c.verdict,
                "–" if c.a is None else f"{c.a:.4g}",
                "–" if c.b is None else f"{c.b:.4g}",
            )
            for c in comparison
        ]
        show(out, f"A/B: {b} vs {a} (95% bootstrap CI over cases)", columns, ab_rows, wide=wide)
        unmeasured = [c.metric for c in comparison if c.verdict == "not measured"]
        if unmeasured:
            out.print(
                f"  not measured: {', '.join(unmeasured)} (fewer than {MIN_PAIRS} cases have "
                "it for both targets)"
            )
    failed = [r for r in run.results if not r.passed]
    for r in failed[:20]:
        why = "; ".join(a.message for a in r.assertions if not a.passed) or (r.error or r.status)
        out.print(Text.assemble("  ", ("✗", "red"), f" {r.target} {r.case_id} r{r.repeat}: {why}"))
    if len(failed) > 20:
        out.print(f"  … and {len(failed) - 20} more failed")
    if baseline is not None:
        colour = "green" if baseline.passed else "red"
        out.print(Text.assemble("baseline: ", (baseline.summary, colour)))


@eval_app.command("run")
def run(
    suite_path: Annotated[Path, typer.Argument(metavar="SUITE", help="suite YAML file")],
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            help="a suite target's name, or NAME:key=value,... (template, model, budget_usd, "
            "memory, cache, seed_offset, templates, policy.KEY); twice for an A/B comparison",
        ),
    ] = None,
    repeat: Annotated[int, typer.Option(min=1, max=100, help="run every case K times")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="cases in flight")] = 4,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="write the run as JSON here ('-': stdout)")
    ] = None,
    junit_path: Annotated[Path | None, typer.Option("--junit", help="write JUnit XML here")] = None,
    report_path: Annotated[
        Path | None, typer.Option("--report", help="write the HTML report here")
    ] = None,
    baseline_path: Annotated[
        Path | None, typer.Option("--baseline", help="a saved --json run to compare with")
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option("--run-dir", help="where results go; an unfinished one resumes")
    ] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="do not resume; start over")] = False,
    wide: Wide = False,
) -> None:
    """Run SUITE against its targets; exit 1 when the gate or the baseline says so."""
    # where the results go is checked before any case runs (and pays)
    if json_path is not None and str(json_path) != "-":
        check_output_file(json_path, "--json")
    for path, option in ((junit_path, "--junit"), (report_path, "--report")):
        if path is not None:
            check_output_file(path, option)
    if run_dir is not None:
        check_output_folder(run_dir, "--run-dir")
    suite = load_suite(suite_path)
    targets = resolve_targets(suite, target or [])
    cfg = settings()
    check_references(suite, targets, settings=cfg)
    baseline_doc = None
    if baseline_path is not None:
        baseline_doc = load_baseline(baseline_path)
        try:  # a baseline that shares no case would compare nothing and find no regression
            check_baseline_overlap(baseline_doc, targets[0].name, {c.id for c in suite.cases})
        except ValueError as exc:
            raise BadInputError(f"baseline {baseline_path}: {exc}") from None
    directory = run_dir or default_run_dir(cfg, suite, targets)
    runner = EvalRunner(
        suite=suite,
        targets=targets,
        run_dir=directory,
        repeat=repeat,
        concurrency=concurrency,
        base_settings=cfg,
        fresh=fresh,
    )
    if cfg.warm_up:
        from brandloop.api.warmup import Warmup  # what it loads is heavy: only when used

        # the models load before the first case, not inside it: the first cases (all of the
        # first target's, before runs were interleaved) paid for them and read as slower
        Warmup().run()
    with Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        task = progress.add_task(f"eval {suite.name}", total=runner.total())

        recorded = 0

        def on_result(result: CaseResult) -> None:
            nonlocal recorded
            recorded += 1
            progress.update(task, advance=1, description=f"{result.target}: {result.case_id}")

        runner.on_result = on_result
        try:
            result = event_loop.run(runner.run())
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted: {recorded} of {runner.total()} case runs are recorded in "
                f"{directory}; the same command with --run-dir {directory} resumes the rest"
            ) from None
        progress.update(task, description=f"eval {suite.name}: done")
    baseline = None
    if baseline_doc is not None and baseline_path is not None:
        try:
            baseline = compare_baseline(
                baseline_doc,
                result.for_target(targets[0].name),
                target=targets[0].name,
                baseline_path=str(baseline_path),
            )
        except ValueError as exc:
            raise BadInputError(f"baseline {baseline_path}: {exc}") from None
    # decided once, stored in the set: the studio shows this verdict, never its own
    result.verdict = decide_verdict(result, baseline)
    record_verdict(directory, result.verdict)
    document = build_document(result, baseline)
    if json_path is not None:
        text = json.dumps(document, indent=2)
        if str(json_path) == "-":
            sys.stdout.write(text + "\n")
        else:
            write_output(json_path, text.encode())
    if junit_path is not None:
        write_output(junit_path, build_junit(result))
    if report_path is not None:
        write_output(report_path, build_html(result, baseline).encode())
    if str(json_path) != "-":
        _print_summary(result, baseline, wide=wide)
        resumed = f", {result.resumed} resumed from an interrupted run" if result.resumed else ""
        out.print(f"results in {directory}  ({result.wall_s:.1f} s{resumed})")
        if report_path is not None:
            out.print(f"report: {report_path}")
    gates = document["gate"]["passed"]
    failing = [name for name, ok in gates.items() if not ok]
    code = 0
    if failing:
        table = document["summary"]
        gate = suite.gate.min_pass_rate
        rates = ", ".join(
            f"{n} {pass_rate_text(table[n]['passed'], table[n]['executions'], gate)} "
            f"({table[n]['passed']}/{table[n]['executions']})"
            for n in failing
        )
        sys.stderr.write(
            f"brandloop: error: gate failed: pass rate below {gate_text(gate)} ({rates})\n"
        )
        code = 1
    if baseline is not None and not baseline.passed:
        # a required metric the baseline measured and this run could not be compared on is
        # not a pass (docs/evals.md, Baseline)
        what = "baseline regression" if baseline.significant else "baseline not measured"
        sys.stderr.write(f"brandloop: error: {what}: {baseline.summary}\n")
        code = 1
    raise typer.Exit(code)


@eval_app.command("validate")
def validate(
    suite_path: Annotated[Path, typer.Argument(metavar="SUITE", help="suite YAML file")],
) -> None:
    """Check SUITE against the schema and expand it, and that the templates, models and
    signals it names exist; print what would run."""
    suite = load_suite(suite_path)
    check_references(suite, suite.targets, settings=settings())
    groups = len(suite.groups)
    out.print(
        f"{suite.name} v{suite.version}: {len(suite.cases)} cases, {groups} group(s), "
        f"targets {', '.join(t.name for t in suite.targets)}, gate {gate_text(suite.gate.min_pass_rate)}"
    )


@eval_app.command("schema")
def schema() -> None:
    """Print the JSON schema of suite files."""
    sys.stdout.write(render_schema())
