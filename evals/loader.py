"""Read a suite file: validate it, expand each case's ``vars`` matrix, apply ``defaults``.

The result is a :class:`~evals.models.Suite` whose cases are ready to run, with a fingerprint
over everything that decides the outcome (the expanded cases, the brand kits, the targets and
the template files they register), so a resumed run can tell it is still the same run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import stat
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from brandloop.domain import brand_key
from brandloop.errors import BadInputError
from brandloop.evals.models import (
    Case,
    CaseSpec,
    MinScore,
    RequestParams,
    Suite,
    SuiteFile,
    TargetSpec,
)
from brandloop.policies.agent import AgentPolicy, load_agent_policy
from brandloop.policies.brandkit import load_brand_kit
from brandloop.policies.scoring import SIGNAL_NAMES
from brandloop.policy_files import describe_validation_error, load_yaml_file, parse_yaml

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MAX_SUITE_BYTES = 1024 * 1024
MAX_CASES = 5000
#: What a ``min_score`` assertion may name: the composite or one of the scored signals.
SCORE_NAMES = ("composite", *SIGNAL_NAMES)


def _substitute(value: Any, variables: dict[str, Any], where: str) -> Any:
    """Replace ``{{name}}`` in every string; a string that is only a placeholder keeps the
    variable's type (so ``seed: "{{seed}}"`` stays an int)."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value.strip())
        if whole and whole.group(1) in variables:
            return variables[whole.group(1)]

        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in variables:
                raise BadInputError(f"{where}: unknown variable {{{{{name}}}}}")
            return str(variables[name])

        return PLACEHOLDER.sub(repl, value)
    if isinstance(value, list):
        return [_substitute(item, variables, where) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, variables, where) for key, item in value.items()}
    return value


def _slug(value: Any) -> str:
    return re.sub(r"[^a-z0-9_.=-]+", "-", str(value).lower()).strip("-") or "x"


def _slugged_id(template: str, variables: dict[str, Any]) -> str:
    """A templated case id with each placeholder's value made id-safe, the rest as written."""
    return PLACEHOLDER.sub(lambda match: _slug(variables[match.group(1)]), template)


def expand_case(spec: CaseSpec) -> list[dict[str, Any]]:
    """One dict per combination of the case's ``vars`` (just the case when it has none)."""
    raw = spec.model_dump(exclude={"vars"}, exclude_unset=False)
    if not spec.vars:
        return [{**raw, "vars": {}}]
    names = sorted(spec.vars)
    for name in names:
        if not spec.vars[name]:
            raise BadInputError(f"case {spec.id}: variable {name!r} has no values")
    expanded = []
    for combo in itertools.product(*(spec.vars[name] for name in names)):
        variables = dict(zip(names, combo, strict=True))
        case = _substitute(raw, variables, f"case {spec.id}")
        # only the values are made id-safe; the id's own text is checked as a literal id is
        # (a templated "ç-{{n}}" once lost its "ç" without a word, while "ç-1" was refused)
        if PLACEHOLDER.search(spec.id):
            case["id"] = _slugged_id(spec.id, variables)
        else:
            case["id"] = spec.id + "-" + "-".join(_slug(variables[n]) for n in names)
        case["vars"] = variables
        expanded.append(case)
    return expanded


#: request fields that say the same thing: a case giving one drops the defaults' other
_EXCLUSIVE = {"size": "aspect_ratio", "aspect_ratio": "size"}


def _merge_request(defaults: RequestParams, own: dict[str, Any]) -> RequestParams:
    """The defaults with the case's own fields over them; a case's ``size`` replaces the
    defaults' ``aspect_ratio`` and its ``aspect_ratio`` the defaults' ``size`` (a request
    takes one of them, and the case's own choice wins)."""
    merged = defaults.model_dump()
    given = {key: value for key, value in own.items() if value is not None}
    merged.update(given)
    for key, other in _EXCLUSIVE.items():
        if key in given and other not in given:
            merged[other] = None
    return RequestParams.model_validate(merged)


def build_suite(data: Any, *, path: Path) -> Suite:
    """Validate a parsed suite document and return it expanded."""
    if not isinstance(data, dict):
        raise BadInputError(f"suite {path}: expected a mapping, got {type(data).__name__}")
    try:
        spec = SuiteFile.model_validate(data)
    except ValidationError as exc:
        raise BadInputError(f"suite {path}: {describe_validation_error(exc)}") from None
    base = path.parent
    brand_names: dict[str, str] = {}
    kit_texts: list[str] = []
    brand_paths: list[str] = []
    for ref in spec.brands:
        kit_path = (base / ref).resolve()
        kit = load_brand_kit(kit_path)
        if kit.slug in brand_names:  # one tenant would hold one brand: the last kit would win
            raise BadInputError(
                f"suite {path}: brands {brand_names[kit.slug]!r} and {kit.name!r} are one brand "
                "(brand names compare ignoring case and separators)"
            )
        brand_names[kit.slug] = kit.name
        brand_paths.append(str(kit_path))
        kit_texts.append(kit_path.read_text(encoding="utf-8"))
    cases: list[Case] = []
    seen: set[str] = set()
    for case_spec in spec.cases:
        try:
            expanded = expand_case(case_spec)
        except BadInputError as exc:
            raise BadInputError(f"suite {path}: {exc}") from None
        for raw in expanded:
            where = f"suite {path}: case {raw['id']}"
            try:
                own = CaseSpec.model_validate({**raw, "vars": {}})
                request = _merge_request(
                    spec.defaults.request, own.request.model_dump(exclude_unset=True)
                )
                assertions = (
                    list(spec.defaults.assertions) if own.inherit_assertions else []
                ) + list(own.assertions)
                case = Case(
                    id=own.id,
                    brief=own.brief,
                    brand=brand_names.get(brand_key(own.brand), own.brand),
                    group=own.group,
                    request=request,
                    assertions=assertions,
                    threshold=own.threshold
                    if own.threshold is not None
                    else spec.defaults.threshold,
                    tags=sorted({*spec.defaults.tags, *own.tags}),
                    vars=raw["vars"],
                )
            except ValidationError as exc:
                raise BadInputError(f"{where}: {describe_validation_error(exc)}") from None
            check_brand(case, brand_names, where)
            if not case.assertions:
                raise BadInputError(f"{where}: has no assertions")
            if not any(assertion.weight > 0 for assertion in case.assertions):
                # its score would be 0 of 0: a case that can never pass, whatever it makes
                raise BadInputError(
                    f"{where}: every assertion has weight 0, so the case could never pass "
                    "(give one a weight above 0)"
                )
            for assertion in case.assertions:
                # a misspelt signal would fail every case as "no accepted image has a ... score"
                if isinstance(assertion, MinScore) and assertion.signal not in SCORE_NAMES:
                    raise BadInputError(
                        f"{where}: min_score names an unknown signal {assertion.signal!r} "
                        f"(known: {', '.join(SCORE_NAMES)})"
                    )
            if case.id in seen:
                raise BadInputError(f"{where}: duplicate case id after expansion")
            seen.add(case.id)
            cases.append(case)
    if len(cases) > MAX_CASES:
        raise BadInputError(f"suite {path}: {len(cases)} cases; the limit is {MAX_CASES}")
    targets = [_resolve_target(t, base) for t in spec.targets]
    return Suite(
        name=spec.name,
        version=spec.version,
        description=spec.description,
        path=str(path),
        fingerprint=_fingerprint(spec.name, spec.version, cases, kit_texts),
        brands=brand_paths,
        gate=spec.gate,
        targets=targets,
        cases=cases,
    )


def check_brand(case: Case, brand_names: dict[str, str], where: str) -> None:
    """Refuse a case whose brand the suite does not load: each target's registry is new and
    holds only the suite's ``brands``, so every execution would fail as "unknown brand" (and
    read as a gate failure), a suite that lists no brands included."""
    if brand_key(case.brand) in brand_names:
        return
    if not brand_names:
        raise BadInputError(
            f"{where}: brand {case.brand!r} is not loaded by the suite: it lists no brands "
            "(add the brand kit's file under brands:)"
        )
    raise BadInputError(
        f"{where}: brand {case.brand!r} is not among the suite's brands "
        f"({', '.join(sorted(brand_names.values()))})"
    )


#: agent policy keys an eval target may not set: an eval run is never held for review
_REVIEW_KEYS = ("review", "brand_review")


def _resolve_target(target: TargetSpec, base: Path) -> TargetSpec:
    review = [key for key in _REVIEW_KEYS if key in target.policy]
    if review:
        # set, it would be silently dropped (the runner runs without the gate)
        raise BadInputError(
            f"target {target.name}: policy.{review[0]} is not an eval setting: an eval run "
            "measures the agent and is never held for review (docs/evals.md)"
        )
    if target.policy:
        try:
            AgentPolicy.model_validate({**load_agent_policy().model_dump(), **target.policy})
        except ValidationError as exc:
            raise BadInputError(
                f"target {target.name}: policy {describe_validation_error(exc)}"
            ) from None
    files = []
    for ref in target.templates:
        file = (base / ref).resolve()
        if not file.is_file():
            raise BadInputError(
                f"target {target.name}: template file {ref} does not exist: it is read "
                f"relative to the suite file's folder, as {file}"
            )
        files.append(str(file))
    return target.model_copy(update={"templates": files})


def _fingerprint(name: str, version: int, cases: list[Case], kit_texts: list[str]) -> str:
    document = {
        "name": name,
        "version": version,
        "cases": [c.model_dump(mode="json") for c in cases],
        "kits": kit_texts,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def target_fingerprint(target: TargetSpec) -> str:
    """What decides a target's behaviour, template file contents included."""
    document: dict[str, Any] = target.model_dump(mode="json")
    document["template_texts"] = [Path(p).read_text(encoding="utf-8") for p in target.templates]
    document.pop("description", None)
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def load_suite(path: Path) -> Suite:
    """Read, validate and expand a suite file; errors name the file and the field."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise BadInputError(f"suite {path} does not exist") from None
    except OSError as exc:
        raise BadInputError(f"suite {path} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):  # never opened: a FIFO would block, a device never end
        kind = "a directory" if stat.S_ISDIR(mode) else "a device, FIFO or socket"
        raise BadInputError(f"suite {path} is not a regular file ({kind})")
    if path.stat().st_size > MAX_SUITE_BYTES:
        raise BadInputError(f"suite {path} is larger than {MAX_SUITE_BYTES} bytes")
    data = load_yaml_file(path, what="suite")
    return build_suite(data, path=path)


#: the words ``--target name:cache=...`` and ``memory=...`` take, and what each means
_SWITCH = {"on": True, "true": True, "yes": True, "1": True,
           "off": False, "false": False, "no": False, "0": False}  # fmt: skip


def parse_target(text: str, *, base: Path) -> TargetSpec:
    """A ``--target`` given on the command line: ``name`` of a suite target, or
    ``name:key=value,key=value`` (keys of TargetSpec; ``templates`` separated by ``+``)."""
    name, _, rest = text.partition(":")
    fields: dict[str, Any] = {"name": name}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise BadInputError(f"--target {text!r}: expected key=value, got {item!r}")
        key = key.strip()
        if key == "templates":
            fields[key] = value.split("+")
        elif key in {"memory", "cache"}:
            said = value.strip().lower()
            if said not in _SWITCH:  # a typo must not quietly turn the cache or memory off
                raise BadInputError(
                    f"--target {text!r}: {key} takes on or off (also true/false, yes/no, "
                    f"1/0), got {value.strip()!r}"
                )
            fields[key] = _SWITCH[said]
        elif key.startswith("policy."):
            fields.setdefault("policy", {})[key.removeprefix("policy.")] = parse_yaml(
                value, source=f"--target {text!r}: {key}"
            )
        else:
            fields[key] = value
    try:
        target = TargetSpec.model_validate(fields)
    except ValidationError as exc:
        raise BadInputError(f"--target {text!r}: {describe_validation_error(exc)}") from None
    return _resolve_target(target, base)
