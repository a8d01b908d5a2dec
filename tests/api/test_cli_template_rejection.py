"""A rejected template version is never used, also through a label (an outside tester's report,
defect 1): rejecting a version takes it out of every label in the verdict's transaction, and a
label older code left on a rejected version sends no run to it and exports without it, so
export → import → export round-trips. Through the CLI, on both databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, run_cli
from tests.api.test_cli_templates import V1, V2, ok

NAME = "seasonal-banner"


def _two_versions_second_in_review(capsys: pytest.CaptureFixture[str]) -> None:
    """The tester's registry: @1 a draft, @2 a draft by ana submitted for review."""
    ok(capsys, "templates", "create", NAME, "--file", V1, "--as", "ana")
    ok(capsys, "templates", "new-version", NAME, "--file", V2, "-m", "minimal", "--as", "ana")


def _generate(capsys: pytest.CaptureFixture[str], ref: str, out: Path, seed: int) -> str:
    """The template version a run made with ``--template ref`` used. A run that accepted
    nothing (exit 4: a few seeds of this small render are never accepted within the default
    budget; ci-fresh on 6eff06d drew one) used its version all the same: that is what counts."""
    code, printed, err = run_cli(
        capsys,
        "generate",
        "an autumn sale banner",
        "--brand",
        str(BRANDS / "acme-coffee.yaml"),
        "--size",
        "128x128",
        "--seed",
        str(seed % 2**32),
        "--template",
        ref,
        "--no-memory",
        "--out",
        str(out),
        "--json",
    )
    assert code in (0, 4), (code, err)
    doc = json.loads(printed)
    trace = json.loads(ok(capsys, "runs", "show", doc["run_id"], "--json"))
    return str(trace["run"]["template"])


def _runs() -> int:
    db = Database.from_settings(get_settings())
    try:
        with db.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one())
    finally:
        db.dispose()


def _round_trip(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    another_database_url: str | None,
) -> dict[str, Any]:
    """Export this registry, import it into a fresh one (exit 0), export that: the same files.
    Returns the exported seasonal-banner document."""
    first, second = tmp_path / "export1", tmp_path / "export2"
    ok(capsys, "templates", "export", str(first))
    monkeypatch.setenv("BRANDLOOP_DATA_DIR", str(tmp_path / "fresh"))
    if another_database_url is not None:
        monkeypatch.setenv("BRANDLOOP_DATABASE_URL", another_database_url)
    get_settings.cache_clear()
    ok(capsys, "templates", "import", str(first), "--as", "lee")
    ok(capsys, "templates", "export", str(second))
    files = sorted(p.name for p in first.iterdir())
    assert sorted(p.name for p in second.iterdir()) == files
    for name in files:
        assert (second / name).read_bytes() == (first / name).read_bytes(), name
    document: dict[str, Any] = json.loads(ok(capsys, "templates", "show", f"{NAME}@1", "--json"))
    return {"labels": document["labels"], "file": (first / f"{NAME}.yaml").read_text()}


def test_rejecting_a_version_takes_it_out_of_every_label(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    another_database_url: str | None,
    seed: int,
) -> None:
    _two_versions_second_in_review(capsys)
    ok(capsys, "templates", "label", NAME, "staging", "2", "--as", "ana")
    ok(capsys, "templates", "label", NAME, "exp", "1=1,2=1", "--as", "ana")
    ok(capsys, "templates", "submit", NAME, "2", "--as", "ana")
    ok(capsys, "templates", "reject", NAME, "2", "--as", "lee", "--note", "off brand")

    # the label left with no version is gone; the split keeps its other version's weight
    assert json.loads(ok(capsys, "templates", "show", f"{NAME}@1", "--json"))["labels"] == {
        "exp": {"1": 1.0}
    }
    history = json.loads(ok(capsys, "templates", "history", NAME, "--json"))
    moves = {
        h["subject"]: (h["actor"], h["detail"])
        for h in history
        if h["action"] == "template.label_moved" and h["actor"] == "lee"
    }
    reason = f"{NAME}@2 was rejected: off brand"
    assert moves == {
        f"{NAME}:staging": (
            "lee",
            {"label": "staging", "from": {"2": 1.0}, "to": None, "reason": reason},
        ),
        f"{NAME}:exp": (
            "lee",
            {"label": "exp", "from": {"1": 1.0, "2": 1.0}, "to": {"1": 1.0}, "reason": reason},
        ),
    }
    # the verdict comes first in the trail, then the label moves it made
    actions = [h["action"] for h in history]
    assert actions[-3:] == ["template.rejected", "template.label_moved", "template.label_moved"]

    stats = {
        v["version"]: v
        for v in json.loads(ok(capsys, "templates", "stats", NAME, "--json"))["versions"]
    }
    assert stats[1]["labels"] == {"exp": 1.0} and stats[2]["labels"] == {}
    assert stats[2]["status"] == "rejected"
    for i in range(3):  # the old code: about half the runs exit 2 "@2 was rejected in review"
        assert _generate(capsys, f"{NAME}:exp", tmp_path / f"o{i}", seed + i) == f"{NAME}@1"
    code, _, err = run_cli(capsys, "templates", "label", NAME, "exp", "1=1,2=1", "--as", "ana")
    assert code == 2 and "was rejected and cannot be labelled" in err

    # the tester's repro: the export no longer holds a label on @2, so another registry takes it
    imported = _round_trip(capsys, tmp_path, monkeypatch, another_database_url)
    assert imported["labels"] == {"exp": {"1": 1.0}}


def _label_as_older_code_left_it(label: str, weights: dict[str, float]) -> None:
    """A label stored before rejecting took a version out of its labels: written straight into
    the registry, as that code's ``templates label`` wrote it before the version's rejection."""
    db = Database.from_settings(get_settings())
    try:
        with db.session() as session:
            template = crud.get_template(session, tenant="default", name=NAME)
            assert template is not None
            crud.set_label(
                session, template_id=template.id, label=label, weights=weights, actor="ana"
            )
    finally:
        db.dispose()


def test_a_label_older_code_left_on_a_rejected_version_is_never_used(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    another_database_url: str | None,
    seed: int,
) -> None:
    _two_versions_second_in_review(capsys)
    ok(capsys, "templates", "submit", NAME, "2", "--as", "ana")
    ok(capsys, "templates", "reject", NAME, "2", "--as", "lee", "--note", "off brand")
    _label_as_older_code_left_it("exp", {"1": 1.0, "2": 1.0})
    _label_as_older_code_left_it("only-rejected", {"2": 1.0})

    for i in range(3):  # a split picks only among the versions that may be used
        assert _generate(capsys, f"{NAME}:exp", tmp_path / f"o{i}", seed + i) == f"{NAME}@1"
    runs = _runs()
    code, out, err = run_cli(
        capsys,
        "generate",
        "x",
        "--brand",
        str(BRANDS / "acme-coffee.yaml"),
        "--template",
        f"{NAME}:only-rejected",
    )
    assert code == 2, (out, err)
    assert err.startswith("brandloop: error: ") and err.count("\n") == 1, err
    assert "label 'only-rejected' of template 'seasonal-banner' points to no version" in err
    assert _runs() == runs  # refused before a run is stored

    stats = {
        v["version"]: v
        for v in json.loads(ok(capsys, "templates", "stats", NAME, "--json"))["versions"]
    }
    assert stats[1]["labels"] == {"exp": 1.0} and stats[2]["labels"] == {}

    # the export leaves the rejected version out of the labels (a label with nothing else out
    # too), so it imports into another registry and exports the same again
    imported = _round_trip(capsys, tmp_path, monkeypatch, another_database_url)
    assert imported["labels"] == {"exp": {"1": 1.0}}
    assert "only-rejected" not in imported["file"]


def test_templates_show_and_list_give_labels_older_code_left_as_runs_use_them(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path
) -> None:
    """Labels older code left on the rejected @2: ``templates show`` and ``templates list``
    (table and ``--json``) leave @2 out of the split and leave out the label that names only
    @2, as the rejection itself would have left them; ``show NAME:exp`` selects @1 only."""
    _two_versions_second_in_review(capsys)
    ok(capsys, "templates", "submit", NAME, "2", "--as", "ana")
    ok(capsys, "templates", "reject", NAME, "2", "--as", "lee", "--note", "off brand")
    _label_as_older_code_left_it("exp", {"1": 3.0, "2": 1.0})
    _label_as_older_code_left_it("only-rejected", {"2": 1.0})

    shown = json.loads(ok(capsys, "templates", "show", f"{NAME}:exp", "--json"))
    assert shown["labels"] == {"exp": {"1": 3.0}}
    assert [v["version"] for v in shown["selected"]] == [1]
    table = ok(capsys, "templates", "show", f"{NAME}@1")
    assert "labels: exp->@1\n" in table and "only-rejected" not in table, table
    listed = {t["name"]: t for t in json.loads(ok(capsys, "templates", "list", "--json"))}
    assert listed[NAME]["labels"] == {"exp": {"1": 3.0}}
    listing = ok(capsys, "templates", "list", "--wide")
    (line,) = [row for row in listing.splitlines() if NAME in row]
    assert "exp->@1 " in line and "@2=" not in line and "only-rejected" not in line, listing
