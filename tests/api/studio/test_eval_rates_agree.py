"""The CLI, the HTML report and the studio show a pass rate and its gate alike: the rate
rounded down, the gate as written. With a 0.667 gate and 2 of 3 passing the CLI said 66.6%,
the report 66.7% against "0.67" and the studio 67% against 67%: a failing rate that read as
the gate, in the two places people look."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.api.studio.conftest import Studio
from tests.api.test_cli import run_cli

ROOT = Path(__file__).resolve().parents[3]


def test_cli_report_and_studio_agree_on_a_rate_just_below_the_gate(
    studio: Studio, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cheap = [{"kind": "max_cost", "max_usd": 1}]
    suite = {
        "name": "agree",
        "version": 1,
        "brands": [str(ROOT / "examples" / "brands" / "acme-coffee.yaml")],
        "gate": {"min_pass_rate": 0.667},
        "defaults": {"request": {"size": "128x128", "budget_usd": 0.3, "seed": 4}},
        "cases": [
            {"id": "cup", "brand": "Acme Coffee", "brief": "a cup", "assertions": cheap},
            {"id": "mug", "brand": "Acme Coffee", "brief": "a mug", "assertions": cheap},
            {"id": "free", "brand": "Acme Coffee", "brief": "a pot",
             "assertions": [{"kind": "max_cost", "max_usd": 0}]},
        ],
    }  # fmt: skip
    path = tmp_path / "agree.yaml"
    path.write_text(json.dumps(suite), encoding="utf-8")
    report_path = tmp_path / "report.html"
    code, out, err = run_cli(capsys, "eval", "run", str(path), "--report", str(report_path))
    assert code == 1, err
    assert "66.6% (2/3)" in out and "gate failed: pass rate below 66.7% " in err, (out, err)

    report = report_path.read_text(encoding="utf-8")
    browser = studio.signed_in_as("default", "ana", "viewer")
    name = re.search(r'href="/evals/(agree-[\w.=-]+)"', browser.get("/evals").text).group(1)  # type: ignore[union-attr]
    served = browser.get(f"/evals/{name}/report").text
    page = browser.get(f"/evals/{name}").text
    for html in (report, served):
        assert "gate (pass rate ≥ 66.7%)" in html and "66.6% (2/3)" in html
        assert "66.7% (2/3)" not in html and "≥ 0.67" not in html
    assert "pass rate ≥ 66.7% per target" in page and "66.6% (2/3)</td><td>FAIL" in page, page
    assert "67%" not in page
