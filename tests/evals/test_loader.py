"""Suite files: the published schema, defaults, vars matrices and the errors a suite author sees."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from brandloop.errors import BadInputError
from brandloop.evals.loader import load_suite, parse_target
from brandloop.evals.models import MaxCost, MinScore
from brandloop.evals.schema import SCHEMA_PATH, render_schema
from tests.evals.conftest import ROOT, on_brand_case, write_suite

SUITES = sorted((ROOT / "evals" / "suites").glob("*.yaml"))


def test_the_published_schema_is_generated_from_the_models() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema(), (
        "evals/schema/suite.schema.json is stale: run `python -m brandloop.evals.schema`"
    )


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_shipped_suites_validate_against_the_published_schema(path: Path) -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), schema)
    suite = load_suite(path)
    assert suite.cases and suite.version >= 1


def test_the_schema_rejects_what_the_loader_rejects(tmp_path: Path) -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    bad = {
        "name": "x",
        "version": 1,
        "cases": [{"id": "a", "brief": "b", "brand": "c", "assertions": [{"kind": "min_score"}]}],
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(BadInputError, match=r"bad.yaml.*min"):
        load_suite(path)


def test_the_default_suite_covers_what_the_issue_asks() -> None:
    suite = load_suite(ROOT / "evals" / "suites" / "default.yaml")
    assert len(suite.cases) >= 30
    tags = {tag for case in suite.cases for tag in case.tags}
    assert {"consistency", "formats", "safety", "injection", "pii"} <= tags
    assert {c.brand for c in suite.cases} == {"Acme Coffee", "Bloom Skincare", "Nordlys Outdoor"}
    assert len(suite.groups) >= 3
    for case in suite.cases:
        assert case.request.size, "every case names a small size, so the suite stays fast"
        assert max(int(side) for side in case.request.size.split("x")) <= 320, case.id
    kinds = {a.kind for c in suite.cases for a in c.assertions}
    assert {"accepted", "refused", "no_pii", "min_consistency", "min_score"} <= kinds


def test_defaults_fill_requests_and_add_assertions(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path / "s.yaml",
        [
            {**on_brand_case("a", "acme coffee", "a cup"), "request": {"size": "256x256"}},
            {
                **on_brand_case("b", "Acme Coffee", "a cup"),
                "inherit_assertions": False,
                "threshold": 0.5,
            },
            {**on_brand_case("c", "Acme Coffee", "a cup"), "request": {"aspect_ratio": "16:9"}},
        ],
        defaults={
            "request": {"size": "128x128", "budget_usd": 0.2, "seed": 9},
            "assertions": [{"kind": "max_cost", "max_usd": 0.2}],
            "threshold": 0.8,
        },
    )
    a, b, c = load_suite(path).cases
    assert a.brand == "Acme Coffee", "brand names resolve case-insensitively to the kit's name"
    assert (a.request.size, a.request.budget_usd, a.request.seed) == ("256x256", 0.2, 9)
    assert [type(x) for x in a.assertions] == [MaxCost, type(a.assertions[1]), MinScore]
    assert a.threshold == 0.8
    assert not any(isinstance(x, MaxCost) for x in b.assertions) and b.threshold == 0.5
    assert c.request.size is None and c.request.aspect_ratio == "16:9"


def test_a_cases_size_replaces_the_defaults_aspect_ratio_and_the_other_way_round(
    tmp_path: Path,
) -> None:
    sized = {**on_brand_case("sized", "Acme Coffee", "a cup"), "request": {"size": "128x128"}}
    wide = {**on_brand_case("wide", "Acme Coffee", "a cup"), "request": {"aspect_ratio": "16:9"}}
    by_ratio = write_suite(
        tmp_path / "ratio.yaml", [sized, wide], defaults={"request": {"aspect_ratio": "1:1"}}
    )
    a, b = load_suite(by_ratio).cases
    assert (a.request.size, a.request.aspect_ratio) == ("128x128", None)
    assert (b.request.size, b.request.aspect_ratio) == (None, "16:9")
    by_size = write_suite(
        tmp_path / "size.yaml", [sized, wide], defaults={"request": {"size": "256x256"}}
    )
    a, b = load_suite(by_size).cases
    assert (a.request.size, a.request.aspect_ratio) == ("128x128", None)
    assert (b.request.size, b.request.aspect_ratio) == (None, "16:9")


def test_vars_expand_into_one_case_per_combination(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path / "s.yaml",
        [
            {
                "id": "fmt-{{brand}}-{{size}}",
                "brand": "{{brand}}",
                "brief": "a hero for {{brand}} at {{size}}",
                "request": {"size": "{{size}}", "seed": "{{seed}}"},
                "vars": {
                    "brand": ["Acme Coffee", "Nordlys Outdoor"],
                    "size": ["128x128", "192x128", "128x192"],
                    "seed": [4],
                },
                "assertions": [{"kind": "accepted"}],
            },
            {
                "id": "plain",
                "brand": "Acme Coffee",
                "brief": "seed {{seed}}",
                "request": {"seed": "{{seed}}"},
                "vars": {"seed": [1, 2]},
                "assertions": [{"kind": "accepted"}],
            },
        ],
    )
    suite = load_suite(path)
    ids = [c.id for c in suite.cases]
    assert len(ids) == 8 and len(set(ids)) == 8
    assert "fmt-acme-coffee-192x128" in ids
    assert ids[-2:] == ["plain-1", "plain-2"], "ids without placeholders get the values appended"
    case = next(c for c in suite.cases if c.id == "fmt-nordlys-outdoor-128x192")
    assert case.brief == "a hero for Nordlys Outdoor at 128x192"
    assert case.request.size == "128x192" and case.request.seed == 4
    assert isinstance(case.request.seed, int)
    assert case.vars == {"brand": "Nordlys Outdoor", "size": "128x192", "seed": 4}


@pytest.mark.parametrize(
    ("cases", "message"),
    [
        (
            [{**on_brand_case("a", "Acme Coffee", "{{nope}}"), "vars": {"x": [1]}}],
            "unknown variable",
        ),
        (
            [on_brand_case("a", "Acme Coffee", "x"), on_brand_case("a", "Acme Coffee", "y")],
            "duplicate",
        ),
        ([on_brand_case("a", "Globex", "x")], "not among the suite's brands"),
        (
            [{"id": "a", "brand": "Acme Coffee", "brief": "x", "assertions": [{"kind": "vibes"}]}],
            "case",
        ),
        ([{"id": "a", "brand": "Acme Coffee", "brief": "x"}], "no assertions"),
        ([{**on_brand_case("a", "Acme Coffee", "x"), "request": {"size": "9x9"}}], "size"),
        # a templated id's own text is checked as a literal id is; only the values are slugged
        ([{**on_brand_case("ç-{{n}}", "Acme Coffee", "x"), "vars": {"n": [1, 2]}}], "id"),
        ([{**on_brand_case("Case-{{n}}", "Acme Coffee", "x"), "vars": {"n": [1]}}], "id"),
        ([{**on_brand_case("../{{n}}", "Acme Coffee", "x"), "vars": {"n": [1]}}], "id"),
        # what every execution of the case would fail on, found when the suite is read
        ([on_brand_case("a", "Acme Coffee", "")], "case a: brief: is empty"),
        ([on_brand_case("a", "Acme Coffee", "\u200b")], "case a: brief: is empty"),
        ([on_brand_case("a", "Acme Coffee", "x" * 4001)], "case a: brief: is 4001 characters"),
        (
            [
                {
                    **on_brand_case("a", "Acme Coffee", "x"),
                    "assertions": [{"kind": "accepted", "weight": 0}],
                }
            ],
            "case a: every assertion has weight 0",
        ),
        # ids name files of the run dir: bounded, whether written or made by vars
        ([on_brand_case("a" * 121, "Acme Coffee", "x")], "id: String should have at most 120"),
        (
            [{**on_brand_case("c-{{n}}", "Acme Coffee", "x"), "vars": {"n": ["n" * 119]}}],
            "id: String should have at most 120",
        ),
    ],
)
def test_suite_errors_name_the_file_and_the_problem(
    tmp_path: Path, cases: list[dict[str, object]], message: str
) -> None:
    path = write_suite(tmp_path / "broken.yaml", cases)
    with pytest.raises(BadInputError, match=message) as exc:
        load_suite(path)
    assert "broken.yaml" in str(exc.value)


def test_a_target_on_the_command_line(tmp_path: Path) -> None:
    target = parse_target(
        "b:template=brand-hero@1,model=procedural/studio,budget_usd=0.2,memory=off,"
        "policy.accept_composite=0.7",
        base=tmp_path,
    )
    assert target.name == "b" and target.template == "brand-hero@1"
    assert target.budget_usd == 0.2 and target.memory is False
    assert target.policy == {"accept_composite": 0.7}
    with pytest.raises(BadInputError, match="policy"):
        parse_target("c:policy.accept_composite=7", base=tmp_path)
    with pytest.raises(BadInputError, match="key=value"):
        parse_target("c:oops", base=tmp_path)


@pytest.mark.parametrize(
    ("said", "means"),
    [("on", True), ("TRUE", True), ("yes", True), ("1", True), ("off", False),
     ("False", False), ("no", False), ("0", False)],
)  # fmt: skip
def test_a_targets_cache_and_memory_take_on_or_off(tmp_path: Path, said: str, means: bool) -> None:
    target = parse_target(f"x:cache={said},memory={said}", base=tmp_path)
    assert target.cache is means and target.memory is means


@pytest.mark.parametrize("typo", ["maybe", "banana", "ture", "enabled", "", "of"])
def test_a_typo_in_a_targets_cache_or_memory_is_refused_not_read_as_off(
    tmp_path: Path, typo: str
) -> None:
    """It quietly ran the target with no cache and no memory, changing what an A/B measures."""
    for key in ("cache", "memory"):
        with pytest.raises(BadInputError, match=f"{key} takes on or off") as exc:
            parse_target(f"x:{key}={typo}", base=tmp_path)
        assert "\n" not in str(exc.value)


def test_a_case_names_a_suite_brand_by_any_spelling_and_two_kits_of_one_brand_are_refused(
    tmp_path: Path,
) -> None:
    path = write_suite(tmp_path / "suite.yaml", [on_brand_case("a", "acme_COFFEE", "a cup")])
    (case,) = load_suite(path).cases
    assert case.brand == "Acme Coffee"
    kit = yaml.safe_load((ROOT / "examples" / "brands" / "acme-coffee.yaml").read_text())
    twin = tmp_path / "twin.yaml"
    twin.write_text(yaml.safe_dump({**kit, "name": "acme-coffee"}), encoding="utf-8")
    path = write_suite(tmp_path / "twins.yaml", [on_brand_case("a", "Acme Coffee", "a cup")])
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["brands"].append(str(twin))
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(BadInputError, match="'Acme Coffee' and 'acme-coffee' are one brand"):
        load_suite(path)


def test_a_missing_template_file_says_it_is_read_relative_to_the_suite(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="read relative to the suite file's folder") as exc:
        parse_target("v2:templates=hero-v2.yaml", base=tmp_path)
    assert str(tmp_path / "hero-v2.yaml") in str(exc.value)
