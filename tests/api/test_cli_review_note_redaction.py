"""A reviewer's note is stored as a brief is - its personal data and key-shaped tokens
redacted - whoever gives it: a run's verdict from the CLI or the API, a template's comment,
submit, approval or rejection from the CLI or the API. An outside tester found an email and
an ``sk-proj-`` key kept in clear in ``review_decisions``, ``audit_log`` and ``run_events``
(a run's rejection) and in ``template_reviews`` and ``audit_log`` (a template's comment). The
CLI's run-review note had no length limit (the API's is 2,000 characters)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.agent.helpers import AUTUMN
from tests.api.test_cli import BRANDS, run_cli
from tests.databases import stored_anywhere

KEY = "sk-proj-ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210zz"
EMAIL = "jane.doe@example.com"
NOTE = f"off brand; ping {EMAIL}, key {KEY}"


def _waiting_run(capsys: pytest.CaptureFixture[str], tmp_path: Path, seed: int) -> str:
    code, out, err = run_cli(
        capsys, "generate", AUTUMN, "--brand", str(BRANDS / "acme-coffee.yaml"),
        "--size", "128x128", "--seed", str(seed), "--no-memory", "--json",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, err
    waiting: dict[str, Any] = json.loads(out)
    assert waiting["status"] == "awaiting_review", waiting["status"]
    return str(waiting["run_id"])


def test_a_run_verdicts_note_from_the_cli_is_stored_redacted_and_held_to_the_limit(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text("review: {mode: always}\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    run_id = _waiting_run(capsys, tmp_path, seed)
    code, _, err = run_cli(capsys, "review", "reject", run_id, "--note", "n" * 2001)
    assert code == 2 and "--note is 2001 characters long; at most 2000" in err, err
    code, out, err = run_cli(capsys, "review", "reject", run_id, "--note", NOTE, "--json")
    assert code == 0, err
    reason = json.loads(out)["reason"]
    assert "[redacted email]" in reason and "[redacted key]" in reason, reason
    for needle in (KEY, EMAIL, KEY[-12:]):
        assert stored_anywhere(db, needle) == [], needle


def test_a_template_comment_from_the_cli_is_stored_redacted(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database
) -> None:
    assert run_cli(capsys, "templates", "list")[0] == 0  # seeds the shipped templates
    code, _, err = run_cli(capsys, "templates", "comment", "brand-hero", "1", "--as", "lee",
                           "-m", f"prod key is {KEY}, ask {EMAIL}")  # fmt: skip
    assert code == 0, err
    for needle in (KEY, EMAIL):
        assert stored_anywhere(db, needle) == [], needle
