"""A run's template refused as the run starts (a label's split landing on a version rejected in
review, a body rendering past the 20,000-character cap) through the CLI, on SQLite and
PostgreSQL: refused before the run is stored (one line, exit 2, nothing kept), and a run older
code left ``running`` on such a template ends ``refused`` when resumed instead of staying so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from brandloop.agent.templates import pick_weighted
from brandloop.domain import GenerationRequest
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.test_cli import BRANDS, data_snapshot, run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "templates"
#: a brief of about 1,000 characters, within the brief's own limit
LONG_BRIEF = " ".join(["a warm cup of coffee on an oak table by the window"] * 20)


def _ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    return out


def _huge_template(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``huge@1``: its body is the brief a hundred times. It passes the checks on storing (the
    sample brief is short); a long brief renders it past the cap."""
    path = tmp_path / "huge.yaml"
    body = " ".join(["{{ brief }}"] * 100) + " {{ palette_clause }}"
    path.write_text(yaml.safe_dump({"name": "huge", "body": body, "message": "echo"}))
    _ok(capsys, "templates", "create", "huge", "--file", str(path), "--as", "ana")


def _statuses(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    return {r["run_id"]: r["status"] for r in json.loads(_ok(capsys, "runs", "list", "--json"))}


def test_a_render_past_the_cap_is_refused_before_the_run_is_stored(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    _ok(capsys, "brands", "add", str(BRANDS / "acme-coffee.yaml"))
    _huge_template(capsys, tmp_path)
    _ok(capsys, "models", "list")  # first use merges the shipped catalog into the registry
    before = data_snapshot(data_dir)
    code, out, err = run_cli(
        capsys,
        "generate",
        LONG_BRIEF,
        "--brand",
        "Acme Coffee",
        "--template",
        "huge@1",
        "--size",
        "128x128",
        "--budget",
        "0.05",
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("brandloop: error: template renders "), err
    assert "the limit is 20000" in err
    assert data_snapshot(data_dir) == before  # no run row, no trace, nothing paid
    assert _statuses(capsys) == {}


def test_a_split_label_on_a_rejected_version_leaves_no_run_running(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database, tmp_path: Path
) -> None:
    """The label rows as older code left them: a split over version 1 and a version rejected
    in review since. The run whose own id the split sends to the rejected version is refused
    before it is stored; the others run on version 1. The split is one where the check's
    fixed id lands on version 1, so a check that did not use the run's own id passed them."""
    _ok(capsys, "brands", "add", str(BRANDS / "acme-coffee.yaml"))
    banner = "seasonal-banner"
    _ok(
        capsys,
        "templates",
        "create",
        banner,
        "--file",
        str(EXAMPLES / f"{banner}.yaml"),
        "--as",
        "ana",
    )
    v2 = str(EXAMPLES / f"{banner}-v2.yaml")
    _ok(capsys, "templates", "new-version", banner, "--file", v2, "-m", "minimal", "--as", "ana")
    _ok(capsys, "templates", "submit", banner, "2", "--as", "ana")
    _ok(capsys, "templates", "reject", banner, "2", "--as", "lee", "--note", "off brand")
    weights = {"1": 1.1, "2": 6.9}
    assert pick_weighted(weights, "check") == 1
    with db.session() as session:
        template = crud.get_template(session, tenant="default", name=banner)
        assert template is not None
        crud.set_label(session, template_id=template.id, label="exp", weights=weights, actor="lee")
    codes = []
    for index in range(4):
        code, out, err = run_cli(
            capsys,
            "generate",
            "an autumn sale banner",
            "--brand",
            "Acme Coffee",
            "--template",
            f"{banner}:exp",
            "--size",
            "128x128",
            "--budget",
            "0.05",
            "--out",
            str(tmp_path / f"out{index}"),
        )
        codes.append(code)
        if code != 0:
            assert code == 2, (out, err)
            assert err.count("\n") == 1, err
            assert f"template {banner}@2 was rejected in review" in err, err
    statuses = _statuses(capsys)
    assert "running" not in statuses.values(), statuses
    assert len(statuses) == codes.count(0), (codes, statuses)  # a refused run is not stored


def test_a_run_left_running_by_older_code_ends_refused_when_resumed(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database, tmp_path: Path
) -> None:
    """Older code stored the run, then its plan refused the template's render and nothing
    ended it. ``runs resume`` ends it ``refused`` with that reason (exit 2, one line); the
    run is no longer ``running``, and resuming it again gives that result (exit 3)."""
    _ok(capsys, "brands", "add", str(BRANDS / "acme-coffee.yaml"))
    _huge_template(capsys, tmp_path)
    request = GenerationRequest(
        brief=LONG_BRIEF, brand="Acme Coffee", template="huge@1", size="128x128", budget_usd=0.05
    )
    with db.session() as session:  # the row as older code left it: running, no result
        brand = crud.get_brand(session, tenant="default", ref="Acme Coffee")
        assert brand is not None
        crud.create_run(
            session,
            run_id="run_0123456789abcdef",
            tenant="default",
            brand_id=brand.id,
            brand_name=brand.name,
            brief=request.brief,
            request=request.model_dump(mode="json"),
            campaign_id=None,
            thread_id=None,
        )
    assert _statuses(capsys) == {"run_0123456789abcdef": "running"}

    code, out, err = run_cli(capsys, "runs", "resume", "run_0123456789abcdef")
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and "template renders" in err, err
    assert _statuses(capsys) == {"run_0123456789abcdef": "refused"}
    shown = json.loads(_ok(capsys, "runs", "show", "run_0123456789abcdef", "--json"))
    run = shown.get("run", shown)
    assert "template renders" in run["reason"] and "the limit is 20000" in run["reason"], run

    code, out, err = run_cli(capsys, "runs", "resume", "run_0123456789abcdef")
    assert code == 3, (out, err)
    assert "refused" in out and "template renders" in out, out
