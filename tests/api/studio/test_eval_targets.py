"""Evals pages of a result set run with targets given on the command line (``--target
NAME:key=value``, the documented way to gate a change): every target it ran, its A/B verdicts
and the gate as ``brandloop eval run`` decided it; an older set without those records says
what it lacks and never shows "GATE PASSED" for a run the CLI failed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.api.studio.conftest import Studio
from tests.api.test_cli import run_cli

ROOT = Path(__file__).resolve().parents[3]
STRICT = "strict:policy.accept_composite=0.999,policy.max_iterations=1"


def _rows(page: str) -> dict[str, str]:
    return {
        row.split("</td>", 1)[0]: row for row in re.findall(r"<tr><td>(.*?)</tr>", page, flags=re.S)
    }


def test_command_line_targets_and_the_cli_gate_verdict_show_in_the_studio(
    studio: Studio, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    suite = {
        "name": "cmdline",
        "version": 1,
        "brands": [str(ROOT / "examples" / "brands" / "acme-coffee.yaml")],
        "gate": {"min_pass_rate": 0.95},
        "defaults": {"request": {"size": "128x128", "budget_usd": 0.3, "seed": 4},
                     "assertions": [{"kind": "accepted"}]},
        "cases": [
            {"id": "cup", "brand": "Acme Coffee", "brief": "a steaming cup on a table"},
            {"id": "beans", "brand": "Acme Coffee", "brief": "coffee beans by the window"},
        ],
    }  # fmt: skip
    path = tmp_path / "cmdline.yaml"
    path.write_text(json.dumps(suite), encoding="utf-8")
    code, _, err = run_cli(
        capsys, "eval", "run", str(path), "--target", "default", "--target", STRICT
    )
    assert code == 1 and "gate failed" in err and "strict" in err, err
    browser = studio.signed_in_as("default", "ana", "viewer")
    name = re.search(r'href="/evals/(cmdline-[\w.=-]+)"', browser.get("/evals").text).group(1)  # type: ignore[union-attr]
    manifest_path = studio.settings.data_dir / "evals" / name / "manifest.json"
    page = browser.get(f"/evals/{name}")
    assert page.status_code == 200, page.text
    rows = _rows(page.text)
    assert "FAIL" in rows["strict"] and "accept_composite" in rows["strict"], rows
    assert "strict against default" in page.text and "One target only" not in page.text
    assert "GATE FAILED" in page.text and "decided it (pass rate ≥ 95.0% per target" in page.text
    report = browser.get(f"/evals/{name}/report")
    assert report.status_code == 200
    assert "GATE FAILED" in report.text and "GATE PASSED" not in report.text
    assert "<b>strict</b>: policy=" in report.text and "strict vs default" in report.text

    # the set records every target in full and the verdict the CLI exited on
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    specs = {t["name"]: t for t in manifest["target_specs"]}
    assert specs["strict"]["policy"] == {"accept_composite": 0.999, "max_iterations": 1}
    decided = manifest["verdict"]["passed"]
    assert set(decided) == {"default", "strict"} and decided["strict"] is False, manifest
    assert ("FAIL" in rows["default"]) is not decided["default"], rows

    # a set an older release wrote: fingerprints only, no verdict
    older = {k: v for k, v in manifest.items() if k not in ("target_specs", "verdict")}
    manifest_path.write_text(json.dumps(older), encoding="utf-8")
    page = browser.get(f"/evals/{name}")
    assert page.status_code == 200, page.text
    rows = _rows(page.text)
    assert "FAIL" in rows["strict"] and "strict against default" in page.text, rows
    assert "Target(s) strict were given on the command line" in page.text, page.text
    assert "predates the record of the gate verdict" in page.text
    assert "GATE FAILED" in page.text
    report = browser.get(f"/evals/{name}/report")
    assert "GATE FAILED" in report.text and "GATE PASSED" not in report.text
    assert "given on the command line" in report.text


def test_an_older_set_whose_pass_rates_meet_the_gate_does_not_claim_it_passed(
    studio: Studio, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Without the recorded verdict a --baseline check the run may have failed is unknown."""
    suite = {
        "name": "lenient",
        "version": 1,
        "brands": [str(ROOT / "examples" / "brands" / "acme-coffee.yaml")],
        "gate": {"min_pass_rate": 0.0},
        "defaults": {"request": {"size": "128x128", "budget_usd": 0.3, "seed": 4}},
        "cases": [{"id": "cup", "brand": "Acme Coffee", "brief": "a steaming cup",
                   "assertions": [{"kind": "max_cost", "max_usd": 1}]}],
    }  # fmt: skip
    path = tmp_path / "lenient.yaml"
    path.write_text(json.dumps(suite), encoding="utf-8")
    code, _, err = run_cli(capsys, "eval", "run", str(path))
    assert code == 0, err
    browser = studio.signed_in_as("default", "ana", "viewer")
    name = re.search(r'href="/evals/(lenient-[\w.=-]+)"', browser.get("/evals").text).group(1)  # type: ignore[union-attr]
    assert "GATE PASSED" in browser.get(f"/evals/{name}/report").text
    manifest_path = studio.settings.data_dir / "evals" / name / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest.pop("verdict", None)
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    for url in (f"/evals/{name}", f"/evals/{name}/report"):
        text = browser.get(url).text
        assert "GATE NOT RECORDED" in text and "GATE PASSED" not in text, url
