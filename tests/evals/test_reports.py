"""The HTML report's structure (every attempt shown once, with its image and its receipt), its
safety (briefs are escaped, nothing is fetched from the network), JUnit XML and the JSON run."""

from __future__ import annotations

import base64
import io
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from brandloop.evals.loader import load_suite
from brandloop.evals.models import AttemptRecord, CaseResult, TargetSpec
from brandloop.evals.reports import build_document, build_html, build_junit
from brandloop.evals.runner import EvalRun, EvalRunner, evaluate_results
from brandloop.settings import Settings
from tests.evals.conftest import on_brand_case, write_suite

# The harness gives each target its own SQLite registry whatever the deployment's database.
pytestmark = pytest.mark.databases("sqlite")


class Structure(HTMLParser):
    """Collects what the assertions below need from the report."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self._in_figure = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if "id" in values:
            self.ids.add(values["id"])
        for key in ("src", "href"):
            if key in values and not values[key].startswith(("#", "data:")):
                self.urls.append(values[key])
        if tag == "figure" and "attempt" in values.get("class", ""):
            self.figures.append(values["data-attempt"])
        if tag == "img":
            self.images.append(values["src"])
        if tag == "a" and values.get("href", "").startswith("#receipt"):
            self.links.append(values["href"][1:])


def parse(html: str) -> Structure:
    parser = Structure()
    parser.feed(html)
    return parser


async def real_run(tmp_path: Path, settings: Settings) -> EvalRun:
    suite = load_suite(
        write_suite(
            tmp_path / "s.yaml",
            [
                on_brand_case("camp-1", "Acme Coffee", "A coffee cup on a table", group="camp"),
                on_brand_case("camp-2", "Acme Coffee", "Coffee beans by a window", group="camp"),
                {
                    "id": "hostile",
                    "brand": "Bloom Skincare",
                    "brief": "<script>alert('x')</script> petals on ivory",
                    "assertions": [{"kind": "accepted"}],
                },
                {
                    "id": "refuse",
                    "brand": "Acme Coffee",
                    "brief": "an instant coffee promo",
                    "assertions": [{"kind": "refused"}],
                },
            ],
        )
    )
    targets = [
        TargetSpec(name="a", memory=False),
        TargetSpec(name="b", memory=False, model="procedural/studio"),
    ]
    return await EvalRunner(
        suite=suite, targets=targets, run_dir=tmp_path / "run", base_settings=settings
    ).run()


async def test_the_report_shows_every_attempt_once_with_its_image_and_receipt(
    tmp_path: Path, settings: Settings
) -> None:
    run = await real_run(tmp_path, settings)
    html = build_html(run)
    page = parse(html)
    attempts = [a.id for r in run.results for a in r.attempts]
    assert attempts, "the run produced attempts"
    assert sorted(page.figures) == sorted(attempts), "one figure per attempt, none twice"
    with_images = [a for r in run.results for a in r.attempts if a.thumbnail]
    assert len(page.images) == len(with_images) > 0
    for src in page.images:
        assert src.startswith("data:image/jpeg;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert max(image.size) <= 160
    assert page.links and set(page.links) <= page.ids, "every receipt link has its anchor"
    assert len(set(page.links)) == len(attempts)
    for r in run.results:
        for a in r.attempts:
            assert a.receipt.get("attempt_id") == a.id
    assert page.urls == [], "a self-contained report fetches nothing"
    assert "script" not in page.tags and "&lt;script&gt;" in html
    assert "A/B comparison" in html and "<svg" in html
    assert all(f"case-{c.id}" in page.ids for c in run.suite.cases)


async def test_case_ids_that_differ_only_in_what_an_anchor_cannot_hold_get_their_own(
    tmp_path: Path, settings: Settings
) -> None:
    """``a=b`` and ``a_b`` both became ``case-a_b``: the index linked both to the first."""
    cases = [
        {"id": case_id, "brand": "Acme Coffee", "brief": f"a cup ({case_id})",
         "assertions": [{"kind": "max_cost", "max_usd": 1}]}
        for case_id in ("a=b", "a_b", "a.b")
    ]  # fmt: skip
    suite = load_suite(write_suite(tmp_path / "s.yaml", cases))
    run = await EvalRunner(
        suite=suite,
        targets=[TargetSpec(name="t", memory=False)],
        run_dir=tmp_path / "run",
        base_settings=settings,
    ).run()
    html = build_html(run)
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    sections = re.findall(r'<section class="case" id="([^"]+)"><h3>([^<]+?) ', html)
    index = re.findall(r'<a href="#(case-[^"]+)">[✓✗] ([^<]+)</a>', html)
    assert sorted(index) == sorted(sections) and len(sections) == 3, (index, sections)
    assert ("case-a_b", "a_b") in sections and ("case-a.b", "a.b") in sections


async def test_json_and_junit_describe_the_same_run(tmp_path: Path, settings: Settings) -> None:
    run = await real_run(tmp_path, settings)
    document = json.loads(json.dumps(build_document(run)))
    assert document["format"] == "brandloop.eval-run/1"
    assert set(document["summary"]) == {"a", "b"}
    assert len(document["cases"]) == len(run.results) == 8
    assert document["comparisons"][0]["a"] == "a" and document["comparisons"][0]["b"] == "b"
    root = ET.fromstring(build_junit(run))
    suites = root.findall("testsuite")
    assert [s.get("tests") for s in suites] == ["4", "4"]
    failed = {c.get("name") for c in root.iter("testcase") if c.find("failure") is not None}
    assert failed == {r.case_id for r in run.results if not r.passed and r.status != "error"}


def test_a_blocked_image_is_withheld_and_a_refusal_has_no_tiles(tmp_path: Path) -> None:
    suite = load_suite(
        write_suite(
            tmp_path / "s.yaml",
            [
                {
                    "id": "blk",
                    "brand": "Acme Coffee",
                    "brief": "b",
                    "assertions": [{"kind": "blocked"}],
                },
                {
                    "id": "ref",
                    "brand": "Acme Coffee",
                    "brief": "r",
                    "assertions": [{"kind": "refused"}],
                },
            ],
        )
    )
    (tmp_path / "run" / "thumbs").mkdir(parents=True)
    Image.new("RGB", (8, 8), "red").save(tmp_path / "run" / "thumbs" / "x.jpg")
    blocked = AttemptRecord(
        id="att-1",
        iteration=1,
        model="procedural/draft",
        template="brand-hero@1",
        prompt="p",
        seed=1,
        width=64,
        height=64,
        outcome="blocked",
        thumbnail="x.jpg",
        receipt={"attempt_id": "att-1"},
    )
    results = [
        CaseResult(
            target="t", case_id="blk", repeat=0, tenant="x", status="failed", attempts=[blocked]
        ),
        CaseResult(target="t", case_id="ref", repeat=0, tenant="y", status="refused", reason="no"),
    ]
    run = EvalRun(
        suite=suite,
        targets=[TargetSpec(name="t")],
        repeat=1,
        run_dir=tmp_path / "run",
        results=evaluate_results(suite, results),
    )
    page = parse(build_html(run))
    assert page.figures == ["att-1"] and page.images == []
    assert all(r.passed for r in run.results)


def test_the_report_shows_the_fix_rate_per_repair_and_model(tmp_path: Path) -> None:
    from brandloop.evals.models import RepairRecord
    from brandloop.evals.reports.document import build_document

    suite = load_suite(
        write_suite(
            tmp_path / "s.yaml",
            [
                {
                    "id": "a",
                    "brand": "Acme Coffee",
                    "brief": "b",
                    "assertions": [{"kind": "refused"}],
                }
            ],
        )
    )
    repairs = [
        RepairRecord(action="strengthen_palette", signal="palette", model="m/1", fixed=True),
        RepairRecord(action="strengthen_palette", signal="palette", model="m/2", fixed=False),
        RepairRecord(action="new_seeds", signal="sharpness", model="m/1", fixed=False),
    ]
    results = [
        CaseResult(target="t", case_id="a", repeat=0, tenant="x", status="failed", repairs=repairs)
    ]
    run = EvalRun(
        suite=suite, targets=[TargetSpec(name="t")], repeat=1, run_dir=tmp_path / "run",
        results=evaluate_results(suite, results),
    )  # fmt: skip
    table = build_document(run)["repairs"]["t"]
    by_action = {(r["action"], r["signal"]): r for r in table["by_action"]}
    assert by_action[("strengthen_palette", "palette")]["fix_rate"] == 0.5
    assert by_action[("new_seeds", "sharpness")]["fix_rate"] == 0.0
    by_model = {r["model"]: r for r in table["by_model"]}
    assert by_model["m/1"]["tried"] == 2 and by_model["m/1"]["fixed"] == 1
    html = build_html(run)
    assert "Repairs that work" in html and "strengthen_palette" in html and "50%" in html
    empty = EvalRun(
        suite=suite, targets=[TargetSpec(name="t")], repeat=1, run_dir=tmp_path / "run",
        results=evaluate_results(suite, [results[0].model_copy(update={"repairs": []})]),
    )  # fmt: skip
    assert "not measured" in build_html(empty)
