"""Evals: the tenant's eval result sets, each one's HTML report (the report `brandloop eval run
--report` writes, built by the same function), and the A/B verdicts between its targets.

Result sets are run directories (``evals/runner.py``): the tenant's own under
``<data_dir>/evals/tenants/<tenant>/runs/``, and for the deployment's CLI tenant
(``BRANDLOOP_TENANT``) the ones ``brandloop eval run`` leaves in ``<data_dir>/evals/``. The
report is served with a CSP that allows no script at all (it has none) and its inline styles.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from brandloop.api.deps import SessionDep, SettingsDep
from brandloop.api.reviews import golden_suite_path, prepare_golden_run, suites_dir
from brandloop.api.studio.web import (
    Approver,
    Csrf,
    StudioError,
    StudioRoute,
    Viewer,
    render,
    see_other,
)
from brandloop.errors import BadInputError, BrandloopError
from brandloop.evals.loader import load_suite, target_fingerprint
from brandloop.evals.models import Suite, TargetSpec
from brandloop.evals.reports import build_html
from brandloop.evals.reports.document import comparisons, decide_verdict, gate_results, summaries
from brandloop.evals.reports.html import gate_label, target_settings
from brandloop.evals.runner import (
    EvalRun,
    EvalRunner,
    evaluate_results,
    record_verdict,
    run_suite,
    suite_as_run,
)
from brandloop.evals.stats import MIN_PAIRS, GateVerdict, gate_text, pass_rate_text
from brandloop.settings import Settings

router = APIRouter(route_class=StudioRoute, include_in_schema=False)
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
#: the golden run of each tenant in this process (the latest, running or done)
_running: dict[str, Future[EvalRun]] = {}
_running_lock = threading.Lock()
log = logging.getLogger(__name__)
UNRECORDED = "given on the command line; its settings were not recorded in this older set"


def result_dirs(settings: Settings, tenant: str) -> list[Path]:
    """The tenant's result sets, newest first."""
    roots = [suites_dir(settings, tenant) / "runs"]
    if tenant == settings.tenant:
        roots.append(settings.data_dir / "evals")
    found = [p.parent for root in roots if root.is_dir() for p in root.glob("*/manifest.json")]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _find(settings: Settings, tenant: str, name: str) -> Path:
    for path in result_dirs(settings, tenant):
        if path.name == name:
            return path
    raise StudioError(404, f"no eval result set {name}")


def manifest_suite(manifest: dict[str, Any]) -> Suite:
    """The suite a set run before sets kept a copy of theirs was run from: the file its
    manifest names, taken only when it is still the suite that ran (its fingerprint matches).
    A suite edited since (an assertion tightened, cases dropped) would judge the stored
    results again by rules they were not run under, under the verdict the CLI decided by the
    old ones; such a set is refused, naming what it recorded. A path stored relative (older
    still) is tried from this server's working directory."""
    stored = Path(manifest["suite_path"])
    if stored.is_absolute() or stored.is_file():
        suite = load_suite(stored)
        if suite.fingerprint == manifest.get("fingerprint"):
            return suite
        raise BadInputError(
            f"the suite {stored} has changed since this set ran (its fingerprint differs), "
            "and this set is older than the copy of its suite that result sets now keep: "
            "its results are not judged again against the changed suite. "
            f"{_recorded_verdict(manifest)}Run the suite again for a set the studio can show."
        )
    raise BadInputError(
        f"its manifest names the suite by the relative path {stored}, and the directory "
        "`brandloop eval run` ran in was not recorded; run the suite again (result sets now "
        "record the absolute path) or write the suite's absolute path into suite_path in "
        "the set's manifest.json"
    )


def _recorded_verdict(manifest: dict[str, Any]) -> str:
    """What ``brandloop eval run`` decided for the set, as a sentence, from its manifest."""
    recorded = manifest.get("verdict")
    if not isinstance(recorded, dict) or not isinstance(recorded.get("passed"), dict):
        return ""
    passed = recorded["passed"]
    failed = sorted(name for name, ok in passed.items() if not ok)
    gate = "failed for " + ", ".join(failed) if failed else "passed"
    return f"`brandloop eval run` recorded: gate {gate}. "


def load_run(path: Path) -> EvalRun:
    """A finished result set as the reports read it: every target it ran (a command-line one
    too, from its recorded spec) and the verdict ``brandloop eval run`` decided. A set an older
    release wrote lacks those records: what it holds is shown, with notes saying what is not."""
    manifest = read_manifest(path)
    # the suite as it ran, never the file as it is now: the results are judged by the rules
    # they ran under, and the cases shown are the ones that ran
    suite = suite_as_run(path) or manifest_suite(manifest)
    targets, notes = _targets(suite, manifest)
    runner = EvalRunner(suite=suite, targets=targets, run_dir=path, repeat=manifest["repeat"])
    results = evaluate_results(suite, runner._existing())
    recorded = manifest.get("verdict")
    verdict = None if recorded is None else GateVerdict.model_validate(recorded)
    finished = bool(manifest.get("finished"))
    if not finished:
        notes.append(_interrupted(path, len(results), runner.total()))
    if verdict is None and finished:
        notes.append(
            "This result set predates the record of the gate verdict `brandloop eval run` "
            "decided: the gate below is worked out again from the stored results, and a "
            "--baseline check it may have failed is not known."
        )
    return EvalRun(
        suite=suite,
        targets=targets,
        repeat=manifest["repeat"],
        run_dir=path,
        results=results,
        started_at=manifest.get("started_at", ""),
        wall_s=manifest.get("wall_s"),
        verdict=verdict,
        notes=notes,
        verdict_missing=verdict is None,
        finished=finished,
        review=manifest.get("review"),
    )


def _interrupted(path: Path, recorded: int, total: int) -> str:
    """The note on a set whose run stopped before every execution ran."""
    return (
        f"This run was interrupted before every case ran: {recorded} of {total} executions "
        "are recorded, so no gate was decided (a target with no execution is not measured). "
        f"`brandloop eval run` with --run-dir {path} and the same suite and targets resumes it."
    )


def _targets(suite: Suite, manifest: dict[str, Any]) -> tuple[list[TargetSpec], list[str]]:
    """The set's targets in the order they ran, and notes on what an older set lacks."""
    if "target_specs" in manifest:
        return [TargetSpec.model_validate(t) for t in manifest["target_specs"]], []
    # older sets name each target with its fingerprint only: a suite target is known by it,
    # a command-line one is shown by name with the results it left
    in_suite = {t.name: t for t in suite.targets}
    targets, unknown = [], []
    for name, fingerprint in manifest.get("targets", {}).items():
        known = in_suite.get(name)
        try:
            same = known is not None and target_fingerprint(known) == fingerprint
        except OSError:  # a templates file of the suite target is gone
            same = False
        if known is not None and same:
            targets.append(known)
        else:
            unknown.append(name)
            targets.append(TargetSpec(name=name, description=UNRECORDED))
    notes = []
    if unknown:
        notes.append(
            f"Target(s) {', '.join(unknown)} were given on the command line (or the suite "
            "file has changed since): this older result set did not record their settings, "
            "only their results. Run the suite again to record them."
        )
    return targets, notes


def read_manifest(path: Path) -> dict[str, Any]:
    """The set's manifest.json as a JSON object; a BadInputError saying why it is not one."""
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(f"its manifest.json cannot be read: {exc}") from None
    if not isinstance(manifest, dict):
        raise BadInputError(f"its manifest.json is a JSON {type(manifest).__name__}, not an object")
    return manifest


def set_row(path: Path) -> dict[str, Any]:
    """The set as the list shows it. One whose manifest cannot be read (cut short, hand-edited)
    is listed as unreadable, with why: it made the whole list a 500."""
    try:
        manifest = read_manifest(path)
    except BadInputError as exc:
        return {"name": path.name, "unreadable": str(exc)}
    targets = manifest.get("targets")
    return {
        "name": path.name,
        "unreadable": None,
        "suite": f"{manifest.get('suite', '?')} v{manifest.get('suite_version', '?')}",
        "targets": ", ".join(map(str, targets)) if isinstance(targets, dict | list) else "",
        "started_at": str(manifest.get("started_at", "")),
        "finished": bool(manifest.get("finished")),
    }


async def _read(settings: Settings, tenant: str, name: str) -> EvalRun:
    path = _find(settings, tenant, name)
    try:
        return await asyncio.to_thread(load_run, path)
    except (BrandloopError, OSError, KeyError, ValueError, TypeError) as exc:
        raise StudioError(409, f"result set {name} cannot be read: {exc}") from None


@router.get("/evals")
def evals(request: Request, user: Viewer, settings: SettingsDep) -> Response:
    sets = [set_row(path) for path in result_dirs(settings, user.tenant)]
    golden = golden_suite_path(settings, user.tenant)
    last = _running.get(user.tenant)
    failed = last.exception() if last is not None and last.done() else None
    context = {
        "title": "Evals",
        "sets": sets,
        "golden": golden.is_file(),
        "running": last is not None and not last.done(),
        "failed": None if failed is None else f"{type(failed).__name__}: {failed}",
    }
    return render(request, "evals.html", context)


@router.get("/evals/{name}")
async def result_set(request: Request, name: str, user: Viewer, settings: SettingsDep) -> Response:
    run = await _read(settings, user.tenant, name)
    table = summaries(run)
    gates = gate_results(run, table)
    gate = run.verdict.min_pass_rate if run.verdict else run.suite.gate.min_pass_rate
    context = {
        "title": f"Eval {name}",
        "name": name,
        "run": run,
        "table": table,
        "gates": gates,
        "verdict": gate_label(run, gates, run.verdict.baseline if run.verdict else None),
        # as the CLI and the report show them: rates rounded down, the gate exactly
        "gate_shown": gate_text(gate),
        "rates": {n: pass_rate_text(s.passed, s.executions, gate) for n, s in table.items()},
        "settings": {t.name: target_settings(t) for t in run.targets},
        "ab": comparisons(run),
        "min_pairs": MIN_PAIRS,
    }
    return render(request, "eval.html", context)


@router.get("/evals/{name}/report")
async def report(name: str, user: Viewer, settings: SettingsDep) -> Response:
    run = await _read(settings, user.tenant, name)
    html = await asyncio.to_thread(build_html, run)
    return HTMLResponse(
        html, headers={"Content-Security-Policy": REPORT_CSP, "Cache-Control": "no-store"}
    )


@router.post("/evals/golden/run")
def run_golden(user: Approver, settings: SettingsDep, session: SessionDep, _: Csrf) -> Response:
    """Run the tenant's golden suite into a new result set, in a thread of its own: an eval
    runs the agent, which must not hold the serving loop (docs/architecture.md). Before
    anything runs or is stored, the suite is brought to carry the template versions its cases
    name, and what would still fail every case (a version the tenant's registry lacks too, a
    model not in the catalog) is refused with a page naming it."""
    suite_path = golden_suite_path(settings, user.tenant)
    if not suite_path.is_file():
        raise StudioError(404, "no golden suite yet: add images to it from the review queue")
    with _running_lock:  # two clicks at once start one run (the check takes milliseconds)
        current = _running.get(user.tenant)
        if current is not None and not current.done():
            raise StudioError(409, "the golden suite is already running")
        suite = prepare_golden_run(session, settings, tenant=user.tenant)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        runner = EvalRunner(
            suite=suite,
            targets=suite.targets,
            run_dir=suites_dir(settings, user.tenant)
            / "runs"
            / f"{suite.name}-v{suite.version}-{stamp}",
            base_settings=settings,
            concurrency=2,
        )
        _running[user.tenant] = _start(runner, user.tenant)
    return see_other("/evals")


def _start(runner: EvalRunner, tenant: str) -> Future[EvalRun]:
    """Run ``runner`` on an event loop of its own in a daemon thread; an interrupted run is
    left unfinished in its directory, as an interrupted ``brandloop eval run`` is."""
    future: Future[EvalRun] = Future()

    def work() -> None:
        future.set_running_or_notify_cancel()
        try:
            done = run_suite(runner)
            done.verdict = decide_verdict(done)
            record_verdict(runner.run_dir, done.verdict)
            future.set_result(done)
        except BaseException as exc:  # the page shows it; the thread ends either way
            log.exception("golden suite run failed", extra={"tenant": tenant})
            future.set_exception(exc)

    threading.Thread(target=work, name=f"golden-eval-{tenant}", daemon=True).start()
    return future
