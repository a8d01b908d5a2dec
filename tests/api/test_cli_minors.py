"""The minors line through the CLI: ``brandloop templates create|new-version|import`` refuse
a template that crosses it with exit 3 and one line, store nothing, and audit the refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from brandloop.registry.db import Database
from brandloop.settings import get_settings
from tests.api.test_cli import run_cli

CROSSING = "{{ brief }}, a little girl posing seductively by the lighthouse"


def refusals(data_dir: Path) -> list[tuple[str, str]]:
    database = Database.from_settings(get_settings())
    try:
        with database.session() as session:
            rows = session.execute(
                sa.text(
                    "SELECT subject_id, detail FROM audit_log "
                    "WHERE action = 'moderation.refused.sexual_minors' ORDER BY id"
                )
            ).all()
    finally:
        database.dispose()
    # detail is JSON: a str on SQLite's raw read, a dict on PostgreSQL's
    return [(row[0], row[1] if isinstance(row[1], str) else json.dumps(row[1])) for row in rows]


def test_templates_crossing_the_line_are_refused(
    capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path
) -> None:
    crossing = tmp_path / "crossing.yaml"
    crossing.write_text(yaml.safe_dump({"body": CROSSING}), encoding="utf-8")
    code, out, err = run_cli(
        capsys, "templates", "create", "summer", "--file", str(crossing), "--as", "ana"
    )
    assert code == 3 and out == "" and err.count("\n") == 1 and "sexual/minors" in err
    code, _, err = run_cli(
        capsys,
        "templates",
        "new-version",
        "brand-hero",
        "--file",
        str(crossing),
        "-m",
        "x",
        "--as",
        "lee",
    )
    assert code == 3 and err.count("\n") == 1
    folder = tmp_path / "import"
    folder.mkdir()
    (folder / "summer.yaml").write_text(
        yaml.safe_dump(
            {"name": "summer", "versions": [{"version": 1, "author": "ana", "body": CROSSING}]}
        ),
        encoding="utf-8",
    )
    code, _, err = run_cli(capsys, "templates", "import", str(folder), "--as", "ana")
    assert code == 3 and err.count("\n") == 1
    code, out, _ = run_cli(capsys, "templates", "list", "--json")
    assert code == 0 and "summer" not in out
    entries = refusals(data_dir)
    assert [subject for subject, _ in entries] == ["summer@1", "brand-hero@2", "summer@1"]
    assert all("lighthouse" not in detail for _, detail in entries)
