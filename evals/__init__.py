"""The offline eval harness: suites as versioned YAML, targets, a resumable runner,
evaluators per assertion kind, statistics with bootstrap intervals, and reports."""

from brandloop.evals.loader import load_suite, parse_target
from brandloop.evals.models import Case, CaseResult, Suite, SuiteFile, TargetSpec
from brandloop.evals.runner import EvalRun, EvalRunner, run_suite

__all__ = [
    "Case",
    "CaseResult",
    "EvalRun",
    "EvalRunner",
    "Suite",
    "SuiteFile",
    "TargetSpec",
    "load_suite",
    "parse_target",
    "run_suite",
]
