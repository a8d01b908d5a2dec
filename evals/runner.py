"""Run a suite: every (target, repeat, case) through ``brandloop.agent.runner.run_generation``.

A run lives in one directory::

    RUN_DIR/manifest.json                 suite, targets (fingerprints and full specs), repeat,
                                          finished or not, wall time, the gate verdict once
                                          decided
    RUN_DIR/suite.json                    the suite as it ran, expanded: a reader judges the
                                          results against it, not against the file as it is now
    RUN_DIR/cases/<target>/<case>__r<k>.json   one CaseResult per execution, written atomically
    RUN_DIR/thumbs/<sha>.jpg              small thumbnails of every attempt's image
    RUN_DIR/data/<target>/                the target's own data dir (registry, artifacts, memory)

Each target gets its own data dir and each case (or group of cases: a campaign) its own tenant,
so neither memory nor registry rows leak between targets, groups or repeats. Cases of a group
run in order, sharing tenant and campaign id; groups and lone cases run concurrently. An
interrupted run resumes: executions whose result file exists are not run again.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import ValidationError
from sqlalchemy import select

from brandloop import event_loop
from brandloop.agent.runner import RunTiming, run_generation
from brandloop.agent.templates import REF_PATTERN, ensure_shipped_templates, shipped_template_names
from brandloop.artifacts import ArtifactStore, atomic_write, read_png_text
from brandloop.domain import GenerationRequest, TemplateVersion, brand_key
from brandloop.errors import BadInputError, present
from brandloop.evals.evaluators import evaluate_case
from brandloop.evals.loader import target_fingerprint
from brandloop.evals.models import (
    AttemptRecord,
    Case,
    CaseResult,
    NoPii,
    RepairRecord,
    Suite,
    TargetSpec,
)
from brandloop.evals.stats import GateVerdict
from brandloop.evals.template_files import check_template_file, plan_registrations
from brandloop.policies.agent import AgentPolicy, ReviewPolicy, load_agent_policy
from brandloop.policies.brandkit import load_brand_kit
from brandloop.policies.catalog import CATALOG_PATH, load_catalog
from brandloop.policy_files import one_line
from brandloop.providers import ImageProvider
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.registry.models_agent import RepairOutcomeRow
from brandloop.settings import Settings
from brandloop.templates.governance import RESERVED_PARAMS

log = logging.getLogger(__name__)

RECEIPT_KEY = "brandloop:receipt"
#: the copy of the suite a set ran (``EvalRunner.run`` writes it; ``suite_as_run`` reads it)
SUITE_COPY = "suite.json"
#: the manifest's ``review`` (and the JSON document's): an eval run is never held for review
REVIEW_NOT_APPLIED = "not applied"
THUMB_SIDE = 160
HIST_BINS = 4
ProgressSink = Callable[[CaseResult], None]
ProvidersFactory = Callable[[TargetSpec], dict[str, ImageProvider] | None]


@dataclass
class EvalRun:
    """A finished (or resumed-to-the-end) run: the suite, its targets and every result."""

    suite: Suite
    targets: list[TargetSpec]
    repeat: int
    run_dir: Path
    results: list[CaseResult]
    resumed: int = 0
    #: this process's time on the run; None when read back from a set that did not record it
    wall_s: float | None = 0.0
    started_at: str = ""
    #: the verdict ``brandloop eval run`` decided, when read back from a finished set
    verdict: GateVerdict | None = None
    #: what a reader of an older set must know (targets or a verdict it did not record)
    notes: list[str] = field(default_factory=list)
    #: read back from an older set that did not record the verdict (``verdict`` is None)
    verdict_missing: bool = False
    #: False for a set read back that stopped before every execution ran (Ctrl-C, a crash):
    #: no gate was decided, and the headline says so rather than GATE FAILED
    finished: bool = True
    #: the review gate of the set's runs (the manifest's ``review``): ``not applied``, or None
    #: for a set an older release started, whose runs a brand's review policy held
    review: str | None = None

    def for_target(self, name: str) -> list[CaseResult]:
        return [r for r in self.results if r.target == name]


@dataclass
class EvalRunner:
    """Runs a suite's executions with bounded concurrency into a run directory."""

    suite: Suite
    targets: list[TargetSpec]
    run_dir: Path
    repeat: int = 1
    concurrency: int = 4
    base_settings: Settings | None = None
    providers: ProvidersFactory | None = None
    on_result: ProgressSink | None = None
    fresh: bool = False
    _lock: asyncio.Lock | None = field(default=None, init=False, repr=False)

    # ------------------------------------------------------------------ the run directory

    def manifest(self) -> dict[str, Any]:
        return {
            "suite": self.suite.name,
            "suite_version": self.suite.version,
            # absolute: the studio reads the set from another working directory
            "suite_path": str(Path(self.suite.path).resolve()),
            "fingerprint": self.suite.fingerprint,
            "targets": {t.name: target_fingerprint(t) for t in self.targets},
            "repeat": self.repeat,
        }

    def prepare(self) -> int:
        """Start a new run dir or pick up an unfinished one; returns results already there."""
        path = self.run_dir / "manifest.json"
        wanted = self.manifest()
        if path.exists() and not self.fresh:
            try:
                existing = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                existing = {}
            same = {k: existing.get(k) for k in wanted} == wanted
            if same and not existing.get("finished", False):
                return len(self._existing())
        if self.run_dir.exists() and not path.exists() and any(self.run_dir.iterdir()):
            raise BadInputError(
                f"{self.run_dir} is not empty and holds no eval run; choose another --run-dir"
            )
        if self.run_dir.exists():
            for sub in ("cases", "thumbs", "data"):
                shutil.rmtree(self.run_dir / sub, ignore_errors=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        # every target in full (a command-line one is in no suite file), for the studio
        specs = [t.model_dump(mode="json") for t in self.targets]
        self._write_manifest(
            {
                **wanted,
                "target_specs": specs,
                "finished": False,
                "started_at": started,
                # a set an older release started (resumed above) held its runs for review
                "review": REVIEW_NOT_APPLIED,
            }
        )
        return 0

    def _write_manifest(self, data: dict[str, Any]) -> None:
        atomic_write(self.run_dir / "manifest.json", json.dumps(data, indent=2).encode())

    def result_path(self, target: str, case_id: str, repeat: int) -> Path:
        return self.run_dir / "cases" / target / f"{case_id}__r{repeat}.json"

    def _existing(self) -> list[CaseResult]:
        found = []
        for path in sorted((self.run_dir / "cases").glob("*/*.json")):
            try:
                found.append(CaseResult.model_validate_json(path.read_bytes()))
            except (OSError, ValidationError):
                path.unlink(missing_ok=True)
        return found

    def _done(self, target: str, case_id: str, repeat: int) -> CaseResult | None:
        path = self.result_path(target, case_id, repeat)
        if not path.exists():
            return None
        try:
            return CaseResult.model_validate_json(path.read_bytes())
        except (OSError, ValidationError):
            return None

    # ------------------------------------------------------------------ running

    def total(self) -> int:
        return len(self.targets) * self.repeat * len(self.suite.cases)

    async def run(self) -> EvalRun:
        started = time.perf_counter()
        self._lock = asyncio.Lock()
        self._prepared: set[tuple[str, str]] = set()
        resumed = self.prepare()
        # a resumed set is the same suite (prepare compared fingerprints): written either way
        atomic_write(self.run_dir / SUITE_COPY, self.suite.model_dump_json().encode())
        manifest = json.loads((self.run_dir / "manifest.json").read_text(encoding="utf-8"))
        semaphore = asyncio.Semaphore(max(1, self.concurrency))
        chains = self._schedule()
        settings_by_target = {t.name: self._settings(t) for t in self.targets}
        # the runner is the entry point here: one registry per target, for the whole run
        databases = {name: Database.from_settings(s) for name, s in settings_by_target.items()}

        async def run_chain(target: TargetSpec, k: int, cases: list[Case]) -> None:
            async with semaphore:
                for case in cases:
                    done = self._done(target.name, case.id, k)
                    if done is None:
                        done = await self._execute(
                            settings_by_target[target.name],
                            databases[target.name],
                            target,
                            case,
                            k,
                        )
                        atomic_write(
                            self.result_path(target.name, case.id, k),
                            done.model_dump_json(indent=1).encode(),
                        )
                    if self.on_result is not None:
                        self.on_result(done)

        tasks = [asyncio.create_task(run_chain(t, k, c)) for t, k, c in chains]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # An interruption stops every chain; finished cases are on disk for the resume.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            for db in databases.values():
                db.dispose()
        specs = [t.model_dump(mode="json") for t in self.targets]  # a resumed older set too
        wall_s = time.perf_counter() - started
        self._write_manifest(
            {**manifest, "target_specs": specs, "finished": True, "wall_s": round(wall_s, 3)}
        )
        results = evaluate_results(self.suite, self._existing())
        return EvalRun(
            suite=self.suite,
            targets=self.targets,
            repeat=self.repeat,
            run_dir=self.run_dir,
            results=results,
            resumed=resumed,
            wall_s=wall_s,
            started_at=manifest.get("started_at", ""),
            review=manifest.get("review"),
        )

    def _schedule(self) -> list[tuple[TargetSpec, int, list[Case]]]:
        """Every (target, repeat, chain) in the order they start: chain by chain, each chain
        for every target in turn, the first target changing from chain to chain. Target by
        target, the first target ran while the process was cold (and the second alone at
        the end), so identical targets read as latency "better" for the second."""
        scheduled: list[tuple[TargetSpec, int, list[Case]]] = []
        turn = 0
        for k in range(self.repeat):
            for chain in self._chains():
                first = turn % len(self.targets)
                for target in [*self.targets[first:], *self.targets[:first]]:
                    scheduled.append((target, k, chain))
                turn += 1
        return scheduled

    def _chains(self) -> list[list[Case]]:
        chains: list[list[Case]] = []
        groups: dict[str, list[Case]] = {}
        for case in self.suite.cases:
            if case.group is None:
                chains.append([case])
            elif case.group in groups:
                groups[case.group].append(case)
            else:
                groups[case.group] = [case]
                chains.append(groups[case.group])
        return chains

    def _settings(self, target: TargetSpec) -> Settings:
        base = self.base_settings or Settings()
        return base.model_copy(
            update={
                "data_dir": (self.run_dir / "data" / target.name).resolve(),
                "database_url": None,
                "chroma_path": None,
                "chroma_host": None,
            }
        )

    async def _prepare_tenant(self, db: Database, target: TargetSpec, tenant: str) -> None:
        """The tenant's brands and the target's templates, once per run: each case of a group
        runs in the group's tenant, and a templates file naming no version would otherwise
        add the next version again for every case (brand-hero@2, @3, ...)."""
        async with present(self._lock, "the runner's lock (made by run())"):
            if (target.name, tenant) in self._prepared:
                return
            with db.session() as session:
                for kit_path in self.suite.brands:
                    crud.upsert_brand(
                        session, tenant=tenant, kit=load_brand_kit(Path(kit_path)), actor="eval"
                    )
                register_templates(session, tenant=tenant, files=target.templates)
            self._prepared.add((target.name, tenant))

    async def _execute(
        self, settings: Settings, db: Database, target: TargetSpec, case: Case, k: int
    ) -> CaseResult:
        tenant = tenant_for(case, k)
        base = CaseResult(
            target=target.name,
            case_id=case.id,
            repeat=k,
            group=case.group,
            tenant=tenant,
            status="error",
            count=case.request.count or 1,
        )
        timings: list[RunTiming] = []
        started = time.perf_counter()
        try:
            policy = agent_policy(target)
            base = base.model_copy(
                update={"review_not_applied": review_not_applied(policy, case.brand)}
            )
            await self._prepare_tenant(db, target, tenant)
            request = build_request(case, target, k, tenant)
            result = await run_generation(
                request,
                settings=settings,
                db=db,
                providers=self.providers(target) if self.providers else None,
                use_memory=target.memory,
                use_cache=target.cache,
                policy=without_review(policy),
                timing=timings.append,
            )
        except Exception as exc:  # one broken case is a failed case, not a failed run
            log.warning(
                "eval case failed",
                exc_info=True,
                extra={"target": target.name, "case": case.id, "repeat": k},
            )
            return base.model_copy(
                update={
                    # whole, on one line: the first line of a ValidationError names no field
                    "error": one_line(f"{type(exc).__name__}: {exc}"),
                    "latency_ms": (time.perf_counter() - started) * 1000,
                    "finished_at": _now(),
                }
            )
        latency = (time.perf_counter() - started) * 1000
        provider_ms = timings[0].provider_s * 1000 if timings else 0.0
        log.info(
            "eval case ran",
            extra={
                "run_id": result.run_id,
                "target": target.name,
                "case": case.id,
                "repeat": k,
                "status": result.status,
            },
        )
        record = collect(
            settings,
            db,
            tenant=tenant,
            run_id=result.run_id,
            thumbs=self.run_dir / "thumbs",
            pii_values=[v for a in case.assertions if isinstance(a, NoPii) for v in a.values],
        )
        return base.model_copy(
            update={
                "run_id": result.run_id,
                "status": result.status,
                "reason": result.reason,
                "accepted": len(result.images),
                "accepted_composites": [round(i.composite, 6) for i in result.images],
                "accepted_signals": [i.scores for i in result.images],
                "cost_usd": round(result.cost_usd, 6),
                "latency_ms": round(latency, 3),
                "provider_ms": round(provider_ms, 3),
                "fallback": any(d.action.startswith("fallback") for d in result.decisions),
                "finished_at": _now(),
                **record,
            }
        )


# --------------------------------------------------------------------------- helpers


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def agent_policy(target: TargetSpec) -> AgentPolicy:
    """The shipped (or configured) agent policy with the target's overrides applied: what a
    run of the target would be held to in production, review gate included."""
    policy = load_agent_policy()
    if not target.policy:
        return policy
    return AgentPolicy.model_validate({**policy.model_dump(), **target.policy})


def without_review(policy: AgentPolicy) -> AgentPolicy:
    """``policy`` with no review gate, for an eval run: the run measures the agent (what it
    accepted, at what cost), and nobody reviews an eval run, so a brand whose deliveries wait
    for a human (``brand_review``) would otherwise end every case ``awaiting_review`` with
    nothing accepted, and leave a run waiting in the target's registry. Only the run's
    policy changes: what it accepts, and how, is the production run's."""
    return policy.model_copy(update={"review": ReviewPolicy(mode="never"), "brand_review": {}})


def review_not_applied(policy: AgentPolicy, brand: str) -> str | None:
    """The review policy production holds ``brand``'s deliveries to, which an eval run does not
    apply (``always (brand acme-coffee)``), or None when it has none."""
    slug = brand_key(brand)
    mode = policy.review_for(slug).mode
    return None if mode == "never" else f"{mode} (brand {slug})"


def group_key(group: str) -> str:
    """The group as a campaign id (``[a-z0-9][a-z0-9_.-]*``): as written when it is one, else
    its slug and a short hash of it, so ``Acme Autumn`` and ``acme autumn`` stay two
    campaigns (a group's name is free text; ``eval-Acme Autumn`` failed every case)."""
    if re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,99}", group):
        return group
    slug = re.sub(r"[^a-z0-9_.-]+", "-", group.lower()).strip("-._")[:80] or "group"
    return f"{slug}-{hashlib.sha256(group.encode()).hexdigest()[:10]}"


def tenant_for(case: Case, k: int) -> str:
    """One tenant per group (a campaign shares memory) or per lone case, per repeat."""
    key = f"g-{group_key(case.group)}" if case.group else f"c-{case.id}"
    name = f"ev{k}-{key}"
    if len(name) <= 60:
        return name
    return name[:47] + "-" + hashlib.sha256(name.encode()).hexdigest()[:12]


def build_request(case: Case, target: TargetSpec, k: int, tenant: str) -> GenerationRequest:
    """The case's request with the target's overrides; repeat k shifts the seed."""
    params = case.request
    base_seed = params.seed
    if base_seed is None:
        base_seed = int(hashlib.sha256(case.id.encode()).hexdigest()[:8], 16)
    seed = (base_seed + target.seed_offset + k * 1_000_003) % (2**32)
    return GenerationRequest(
        brief=case.brief,
        brand=case.brand,
        count=params.count or 1,
        size=params.size,
        aspect_ratio=params.aspect_ratio,
        budget_usd=target.budget_usd if target.budget_usd is not None else params.budget_usd,
        seed=seed,
        model=target.model or params.model,
        template=target.template or params.template,
        campaign_id=f"eval-{group_key(case.group)}" if case.group else None,
        tenant=tenant,
    )


def register_templates(session: Any, *, tenant: str, files: list[str]) -> None:
    """Register each template file as an approved version of its template, numbered as
    :func:`brandloop.evals.template_files.plan_registrations` numbers it (the file's
    ``version``, or the next free number); the runner calls it once per tenant and run, and
    a version already there (a case cut off mid-run and run again) is left as it is."""
    if not files:
        return
    ensure_shipped_templates(session, tenant=tenant)
    for registration in plan_registrations(files):
        name = registration.file.name
        template = crud.get_template(session, tenant=tenant, name=name)
        if not registration.new or (
            template is not None
            and crud.get_template_version(
                session, template_id=template.id, version=registration.number
            )
        ):
            continue
        crud.add_template_version(
            session,
            tenant=tenant,
            version=registration.file.as_version(registration.number),
            description=registration.file.spec.description,
        )


# --------------------------------------------------------------------------- before a run


def known_templates(target: TargetSpec) -> dict[str, tuple[set[int], set[str]]]:
    """Template name → (versions, labels) a case of ``target`` can resolve: its registry is
    new, so it holds the shipped templates (version 1, label production) and what the
    target's template files register (:func:`register_templates`, which numbers alike)."""
    known: dict[str, tuple[set[int], set[str]]] = {
        name: ({1}, {"production"}) for name in shipped_template_names()
    }
    for registration in plan_registrations(target.templates):
        versions, _labels = known.setdefault(registration.file.name, (set(), set()))
        versions.add(registration.number)
    return known


def _template_problem(ref: str, known: dict[str, tuple[set[int], set[str]]]) -> str | None:
    """Why ``ref`` would not resolve in a registry holding ``known`` (as
    :func:`brandloop.agent.templates.resolve_template` would say it), or None."""
    match = REF_PATTERN.fullmatch(ref)
    if not match:
        return f"template reference {ref!r} is not name, name@VERSION or name:LABEL"
    name = match["name"]
    choices = ", ".join(
        f"{n}@{v}" for n, (versions, _) in sorted(known.items()) for v in sorted(versions)
    )
    if name not in known:
        return f"template {ref!r} does not exist: there is no template {name!r} (known: {choices})"
    versions, labels = known[name]
    if match["version"]:
        if int(match["version"]) not in versions:
            return (
                f"template {ref!r} does not exist: {name} has no version "
                f"{int(match['version'])} (known: {choices})"
            )
        return None
    label = match["label"] or "production"
    if label not in labels:
        return (
            f"template {ref!r} does not resolve: {name} has no label {label!r} "
            f"(labels: {', '.join(sorted(labels)) or 'none'}; name a version: {name}@N)"
        )
    return None


def template_refs(suite: Suite, target: TargetSpec) -> list[str]:
    """The template refs the cases run with under ``target`` (what build_request sends: the
    target's own ref wins over a case's)."""
    if target.template is not None:
        return [target.template]
    return [c.request.template for c in suite.cases if c.request.template is not None]


def versions_to_carry(suite: Suite, targets: list[TargetSpec]) -> list[tuple[str, int]]:
    """The template versions, as (name, number), that the cases or targets name by number and
    a target's fresh registry would not hold (neither shipped nor in its ``templates`` files):
    what the targets must carry for them to resolve. A label is never carried (a fresh
    registry has the shipped labels only), so a ref by label stays for
    :func:`check_references` to name."""
    wanted: set[tuple[str, int]] = set()
    for target in targets:
        known = known_templates(target)
        for ref in template_refs(suite, target):
            match = REF_PATTERN.fullmatch(ref)
            if match and match["version"] and _template_problem(ref, known):
                wanted.add((match["name"], int(match["version"])))
    return sorted(wanted)


def template_file_document(version: TemplateVersion, *, description: str = "") -> dict[str, Any]:
    """A registered version as a target's template file (the shape
    :func:`brandloop.evals.template_files.read_template_file` reads), naming its number, so a
    target registers the same version under the same ref. A param brandloop sets itself,
    which a version stored before templates were refused it may hold but never sends, is
    left out: the file is checked as ``new-version`` checks one."""
    return {
        "name": version.name,
        "version": version.version,
        "description": description,
        "author": version.author,
        "message": version.message,
        "body": version.body,
        "negative_body": version.negative_body,
        "params": {k: v for k, v in version.params.items() if k not in RESERVED_PARAMS},
        "model_hints": list(version.model_hints),
        "metadata": version.metadata,
    }


def check_references(suite: Suite, targets: list[TargetSpec], *, settings: Settings) -> None:
    """Refuse, before any case runs, what every execution would fail on: a template (ref or
    version) or a model that does not exist where the targets run. ``settings`` are the
    deployment's; a target's own registry takes the catalog they name, else the shipped one."""
    catalog = load_catalog(settings.catalog_path or CATALOG_PATH)
    models = {m.id for m in catalog}
    problems: list[str] = []

    def add(problem: str) -> None:
        if problem not in problems:
            problems.append(problem)

    for target in targets:
        # a candidate version is checked as create / new-version check it, before any case
        for registration in plan_registrations(target.templates):
            check_template_file(registration.file, models=models)
    for target in targets:
        where = f"suite {suite.path}: target {target.name}"
        known = known_templates(target)
        if target.model is not None and target.model not in models:
            add(f"{where}: unknown model {target.model!r} (known: {', '.join(sorted(models))})")
        if target.template is not None:
            problem = _template_problem(target.template, known)
            if problem:
                add(f"{where}: {problem}")
        for case in suite.cases:
            # what build_request sends: the target's setting wins over the case's
            case_where = f"suite {suite.path}: case {case.id}"
            if len(targets) > 1:
                case_where += f" (target {target.name})"
            model = target.model or case.request.model
            if target.model is None and model is not None and model not in models:
                add(f"{case_where}: unknown model {model!r} (known: {', '.join(sorted(models))})")
            if target.template is None and case.request.template is not None:
                problem = _template_problem(case.request.template, known)
                if problem:
                    add(f"{case_where}: {problem}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise BadInputError("; ".join(problems[:3]) + more)


#: What may stand between the digits of a number: anything but a letter or a digit (spaces,
#: dots, slashes, underscores, brackets, ``+``, and hyphens and dashes of every kind).
_SEPARATOR = r"[\W_]"


def _pii_pattern(value: str) -> re.Pattern[str]:
    """Phone, card and account numbers match whatever separators were used."""
    digits = re.sub(r"\D", "", value)
    if len(digits) >= 6 and len(digits) >= len(re.sub(_SEPARATOR, "", value)) - 4:
        return re.compile(f"{_SEPARATOR}*".join(re.escape(d) for d in digits))
    return re.compile(re.escape(value.casefold()))


def find_pii(texts: list[str], values: list[str]) -> list[str]:
    """The values that occur in any of ``texts`` (case-insensitive, separators ignored)."""
    haystack = [t.casefold() for t in texts]
    return [v for v in values if any(_pii_pattern(v).search(t) for t in haystack)]


def colour_histogram(data: bytes) -> list[float]:
    """A coarse RGB histogram (4 bins per channel), normalised to sum to 1."""
    image = Image.open(io.BytesIO(data)).convert("RGB").resize((48, 48), Image.Resampling.BOX)
    pixels = np.asarray(image, dtype=np.int64).reshape(-1, 3) // (256 // HIST_BINS)
    index = pixels[:, 0] * HIST_BINS * HIST_BINS + pixels[:, 1] * HIST_BINS + pixels[:, 2]
    counts = np.bincount(index, minlength=HIST_BINS**3).astype(float)
    return [round(float(c), 5) for c in counts / counts.sum()]


def thumbnail(data: bytes, directory: Path, sha256: str) -> str:
    """A small JPEG of the image, stored once per sha; returns its file name."""
    name = f"{sha256[:20]}.jpg"
    path = directory / name
    if not path.exists():
        image = Image.open(io.BytesIO(data)).convert("RGB")
        image.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=72, optimize=True)
        atomic_write(path, buffer.getvalue())
    return name


def collect(
    settings: Settings,
    db: Database,
    *,
    tenant: str,
    run_id: str,
    thumbs: Path,
    pii_values: list[str],
) -> dict[str, Any]:
    """Read back from the target's registry what a run stored: attempts, receipts, thumbnails,
    the colour histograms of accepted images, and which PII values were stored in clear."""
    store = ArtifactStore(settings.artifacts_dir)
    attempts: list[AttemptRecord] = []
    histograms: list[list[float]] = []
    with db.session() as session:
        run = present(crud.get_run(session, tenant=tenant, run_id=run_id), f"run {run_id}")
        stored_texts = [run.brief, json.dumps(run.request, ensure_ascii=False)]
        receipts: dict[str, dict[str, Any]] = {}
        for image in (run.result or {}).get("images", []):
            path = image.get("path")
            if path and Path(path).exists():
                data = Path(path).read_bytes()
                histograms.append(colour_histogram(data))
                text = read_png_text(data).get(RECEIPT_KEY)
                if text:
                    receipt = json.loads(text)
                    receipts[receipt.get("attempt_id", "")] = receipt
        for row in crud.list_attempts(session, run_id=run_id):
            stored_texts += [row.prompt, row.negative_prompt]
            thumb = None
            if (
                row.artifact_sha256
                and row.outcome != "blocked"
                and store.exists(row.artifact_sha256)
            ):
                thumb = thumbnail(store.get(row.artifact_sha256), thumbs, row.artifact_sha256)
            signals = {
                name: round(float(sig["value"]), 4)
                for name, sig in ((row.scores or {}).get("signals") or {}).items()
            }
            receipt = receipts.get(row.id) or {
                "run_id": run_id,
                "attempt_id": row.id,
                "source_sha256": row.artifact_sha256,
                "template": row.template_ref,
                "prompt": row.prompt,
                "negative_prompt": row.negative_prompt,
                "model": row.model,
                "seed_requested": row.seed_requested,
                "seed_returned": row.seed_returned,
                "width": row.width,
                "height": row.height,
                "outcome": row.outcome,
                "scores": signals,
                "composite": row.composite,
                "moderation": row.moderation,
                "cost_usd": row.cost_usd,
                "error": row.error,
            }
            attempts.append(
                AttemptRecord(
                    id=row.id,
                    iteration=row.iteration,
                    model=row.model,
                    template=row.template_ref,
                    prompt=row.prompt,
                    negative_prompt=row.negative_prompt,
                    seed=row.seed_requested,
                    width=row.width,
                    height=row.height,
                    outcome=row.outcome,
                    composite=row.composite,
                    signals=signals,
                    cost_usd=row.cost_usd,
                    latency_ms=row.latency_ms,
                    cache_hit=row.cache_hit,
                    error=row.error,
                    moderation=row.moderation,
                    sha256=row.artifact_sha256,
                    thumbnail=thumb,
                    receipt=receipt,
                )
            )
        repairs = [
            RepairRecord(action=r.action, signal=r.signal, model=r.model, fixed=r.fixed)
            for r in session.scalars(
                select(RepairOutcomeRow)
                .where(RepairOutcomeRow.run_id == run_id)
                .order_by(RepairOutcomeRow.round, RepairOutcomeRow.id)
            )
        ]
    return {
        "repairs": repairs,
        "attempts": attempts,
        "histograms": histograms,
        "pii_found": find_pii(stored_texts, pii_values),
    }


def evaluate_results(suite: Suite, results: list[CaseResult]) -> list[CaseResult]:
    """Evaluate every result against its case; group assertions see their group's results."""
    cases = {c.id: c for c in suite.cases}
    by_group: dict[tuple[str, int, str], list[CaseResult]] = {}
    for r in results:
        if r.group:
            by_group.setdefault((r.target, r.repeat, r.group), []).append(r)
    order = {c.id: i for i, c in enumerate(suite.cases)}
    evaluated = []
    for r in sorted(results, key=lambda r: (r.target, r.repeat, order.get(r.case_id, 0))):
        case = cases.get(r.case_id)
        if case is None:
            continue
        group = by_group.get((r.target, r.repeat, r.group), []) if r.group else [r]
        evaluated.append(evaluate_case(case, r, group))
    return evaluated


def suite_as_run(run_dir: Path) -> Suite | None:
    """The suite the set in ``run_dir`` ran, from the copy the runner keeps; None for a set
    written before sets kept one."""
    path = run_dir / SUITE_COPY
    if not path.is_file():
        return None
    return Suite.model_validate_json(path.read_bytes())


def default_run_dir(settings: Settings, suite: Suite, targets: list[TargetSpec]) -> Path:
    digest = hashlib.sha256(
        (suite.fingerprint + "|".join(target_fingerprint(t) for t in targets)).encode()
    ).hexdigest()[:10]
    return settings.data_dir / "evals" / f"{suite.name}-v{suite.version}-{digest}"


def record_verdict(run_dir: Path, verdict: GateVerdict) -> None:
    """Store the verdict the caller decided in the set's manifest (docs/evals.md)."""
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    manifest["verdict"] = verdict.model_dump(mode="json")
    atomic_write(run_dir / "manifest.json", json.dumps(manifest, indent=2).encode())


def run_suite(runner: EvalRunner) -> EvalRun:
    """Synchronous wrapper for callers outside an event loop."""
    return event_loop.run(runner.run())
