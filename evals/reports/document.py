"""The run as one JSON document: the ``--json`` output, the input of ``--baseline``."""

from __future__ import annotations

from typing import Any

from brandloop.agent.repairs import FixRate, repair_stats
from brandloop.evals.models import CaseResult
from brandloop.evals.runner import EvalRun
from brandloop.evals.stats import (
    BaselineReport,
    Comparison,
    GateVerdict,
    TargetSummary,
    compare,
    meets_gate,
    summarize,
)

RUN_FORMAT = "brandloop.eval-run/1"


def summaries(run: EvalRun) -> dict[str, TargetSummary]:
    return {t.name: summarize(t.name, run.for_target(t.name)) for t in run.targets}


def comparisons(run: EvalRun) -> list[tuple[str, str, list[Comparison]]]:
    """Every other target against the first (A = the first target, B = the other)."""
    if len(run.targets) < 2:
        return []
    first = run.targets[0].name
    return [
        (first, t.name, compare(run.for_target(first), run.for_target(t.name)))
        for t in run.targets[1:]
    ]


def gate_results(run: EvalRun, table: dict[str, TargetSummary]) -> dict[str, bool]:
    """Per target, whether it met the gate: as ``brandloop eval run`` decided it when the set
    recorded that (a reader never decides again, differently), else from its pass rate."""
    if run.verdict is not None:
        recorded = run.verdict.passed
        return {name: recorded.get(name, False) for name in table}
    gate = run.suite.gate.min_pass_rate
    return {name: meets_gate(s.passed, s.executions, gate) for name, s in table.items()}


def decide_verdict(run: EvalRun, baseline: BaselineReport | None = None) -> GateVerdict:
    """The run's verdict: the gate per target and the baseline check; the CLI exits on it and
    stores it in the set (``record_verdict``)."""
    return GateVerdict(
        min_pass_rate=run.suite.gate.min_pass_rate,
        passed=gate_results(run, summaries(run)),
        baseline=baseline,
    )


def case_row(result: CaseResult) -> dict[str, Any]:
    return {
        "target": result.target,
        "case_id": result.case_id,
        "repeat": result.repeat,
        "group": result.group,
        "run_id": result.run_id,
        "status": result.status,
        "reason": result.reason,
        "error": result.error,
        "passed": result.passed,
        "score": result.score,
        "accepted": result.accepted,
        "accepted_composites": result.accepted_composites,
        "cost_usd": result.cost_usd,
        "attempt_count": len(result.attempts),
        "latency_ms": result.latency_ms,
        "fallback": result.fallback,
        "review_not_applied": result.review_not_applied,
        "assertions": [a.model_dump(mode="json") for a in result.assertions],
    }


def build_document(run: EvalRun, baseline: BaselineReport | None = None) -> dict[str, Any]:
    table = summaries(run)
    gates = gate_results(run, table)
    return {
        "format": RUN_FORMAT,
        "suite": {
            "name": run.suite.name,
            "version": run.suite.version,
            "path": run.suite.path,
            "fingerprint": run.suite.fingerprint,
            "cases": len(run.suite.cases),
        },
        "run_dir": str(run.run_dir),
        "started_at": run.started_at,
        "wall_s": None if run.wall_s is None else round(run.wall_s, 3),
        "repeat": run.repeat,
        "resumed": run.resumed,
        "review": run.review,
        "targets": [t.model_dump(mode="json") for t in run.targets],
        "gate": {"min_pass_rate": run.suite.gate.min_pass_rate, "passed": gates},
        "summary": {name: s.model_dump(mode="json") for name, s in table.items()},
        "comparisons": [
            {"a": a, "b": b, "metrics": [c.model_dump(mode="json") for c in metrics]}
            for a, b, metrics in comparisons(run)
        ],
        "baseline": baseline.model_dump(mode="json") if baseline else None,
        "repairs": repair_rates(run),
        "cases": [case_row(r) for r in run.results],
    }


def repair_rates(run: EvalRun) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per target: how often each repair fixed its signal, per action and per model."""
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for target in run.targets:
        rates = [
            FixRate(action=r.action, signal=r.signal, model=r.model, fixed=int(r.fixed), tried=1)
            for result in run.for_target(target.name)
            for r in result.repairs
        ]
        stats = repair_stats(rates, brand=None)
        found[target.name] = {
            "by_action": [row.model_dump(mode="json") for row in stats.by_action],
            "by_model": [row.model_dump(mode="json") for row in stats.by_model],
        }
    return found
