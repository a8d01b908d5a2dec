"""A result set is shown as it ran: judged by the suite it ran (the copy the set keeps), never
by the suite file as it is now. The file edited after ``brandloop eval run`` (an assertion
tightened, a case dropped) once made the set's page read "GATE PASSED ... default 0% (0/3)":
the old verdict over results judged again, and cut, by the new rules."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.api.studio.conftest import Studio
from tests.api.test_cli import run_cli

ROOT = Path(__file__).resolve().parents[3]


def _suite(max_usd: float, cases: list[str]) -> str:
    return json.dumps(
        {
            "name": "edited",
            "version": 1,
            "brands": [str(ROOT / "examples" / "brands" / "acme-coffee.yaml")],
            "gate": {"min_pass_rate": 0.9},
            "defaults": {
                "request": {"size": "128x128", "budget_usd": 0.3, "seed": 4},
                "assertions": [{"kind": "max_cost", "max_usd": max_usd}],
            },
            "cases": [
                {"id": c, "brand": "Acme Coffee", "brief": f"a {c} on a table"} for c in cases
            ],
        }
    )


def test_a_set_whose_suite_file_was_edited_since_is_shown_as_it_ran(
    studio: Studio, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "s1.yaml"
    path.write_text(_suite(1.0, ["cup", "mug", "pot"]), encoding="utf-8")
    code, _, err = run_cli(capsys, "eval", "run", str(path))
    assert code == 0, err
    browser = studio.signed_in_as("default", "ana", "viewer")
    name = re.search(r'href="/evals/(edited-[\w.=-]+)"', browser.get("/evals").text).group(1)  # type: ignore[union-attr]

    # tighten the assertion past what any run meets, and drop a case
    path.write_text(_suite(0.0001, ["cup"]), encoding="utf-8")
    page = browser.get(f"/evals/{name}")
    assert page.status_code == 200, page.text
    assert "edited v1 · 3 execution(s)" in page.text, page.text
    assert "GATE PASSED" in page.text and "(3/3)</td><td>pass" in page.text, page.text
    report = browser.get(f"/evals/{name}/report")
    assert report.status_code == 200
    assert "3 cases × 1 target(s)" in report.text and "<em>not run</em>" not in report.text
    assert "GATE PASSED" in report.text and "100.0% (3/3)" in report.text
    assert " · 0.0 s" not in report.text and re.search(r" · \d+\.\d s · suite", report.text)

    # a set from before sets kept their suite: refused with what the CLI recorded, not re-judged
    run_dir = studio.settings.data_dir / "evals" / name
    (run_dir / "suite.json").unlink()
    for url in (f"/evals/{name}", f"/evals/{name}/report"):
        refused = browser.get(url)
        assert refused.status_code == 409, (url, refused.text)
        assert "has changed since this set ran" in refused.text
        assert "recorded: gate passed" in refused.text and "0%" not in refused.text
    # ... and one that did not record its wall time says so rather than "0.0 s"
    path.write_text(_suite(1.0, ["cup", "mug", "pot"]), encoding="utf-8")
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    manifest.pop("wall_s")
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    report = browser.get(f"/evals/{name}/report")
    assert report.status_code == 200 and "wall time not recorded" in report.text


def test_an_interrupted_set_is_not_measured_never_gate_failed(
    studio: Studio, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Ctrl-C mid-run leaves the set unfinished, with no verdict: its headline read GATE
    FAILED over targets that said "not measured"."""
    path = tmp_path / "s1.yaml"
    path.write_text(_suite(1.0, ["cup", "mug"]), encoding="utf-8")
    code, _, err = run_cli(
        capsys, "eval", "run", str(path), "--target", "default", "--target", "other:cache=off"
    )
    assert code == 0, err
    browser = studio.signed_in_as("default", "ana", "viewer")
    name = re.search(r'href="/evals/(edited-[\w.=-]+)"', browser.get("/evals").text).group(1)  # type: ignore[union-attr]
    # what an interruption leaves: unfinished, no verdict, one target not reached
    run_dir = studio.settings.data_dir / "evals" / name
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    for key in ("verdict", "wall_s"):
        manifest.pop(key)
    manifest["finished"] = False
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    shutil.rmtree(run_dir / "cases" / "other")
    for url in (f"/evals/{name}", f"/evals/{name}/report"):
        page = browser.get(url)
        assert page.status_code == 200, page.text
        assert "GATE NOT MEASURED: RUN INTERRUPTED" in page.text, url
        assert "GATE FAILED" not in page.text and "GATE PASSED" not in page.text, url
        assert "interrupted before every case ran: 2 of 4 executions are recorded" in page.text
        assert f"--run-dir {run_dir}" in page.text


def test_a_set_whose_manifest_cannot_be_read_is_flagged_not_a_500(
    studio: Studio, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """One cut-short or hand-edited manifest.json under the evals folder made the whole list
    a 500 (an internal error), and its own page too."""
    path = tmp_path / "s1.yaml"
    path.write_text(_suite(1.0, ["cup"]), encoding="utf-8")
    code, _, err = run_cli(capsys, "eval", "run", str(path))
    assert code == 0, err
    evals = studio.settings.data_dir / "evals"
    broken = {"cut-short": '{"suite": "x"', "a-list": "[]", "no-keys": '{"suite": "x"}'}
    for name, text in broken.items():
        (evals / name).mkdir()
        (evals / name / "manifest.json").write_text(text, encoding="utf-8")
    browser = studio.signed_in_as("default", "ana", "viewer")
    listed = browser.get("/evals")
    assert listed.status_code == 200, listed.text
    assert re.search(r'href="/evals/edited-[\w.=-]+"', listed.text), "the readable set is listed"
    assert "unreadable: its manifest.json cannot be read" in listed.text
    assert "unreadable: its manifest.json is a JSON list, not an object" in listed.text
    assert "<td>x v?</td>" in listed.text
    for name in broken:
        for url in (f"/evals/{name}", f"/evals/{name}/report"):
            page = browser.get(url)
            assert page.status_code == 409, (url, page.status_code, page.text[-500:])
            assert f"result set {name} cannot be read" in page.text, url
