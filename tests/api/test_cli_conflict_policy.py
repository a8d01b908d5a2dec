"""The brand conflict policy through ``brandloop generate --json`` (docs/agent.md, "Pre-flight
conflict check"), on SQLite and PostgreSQL. Two ways it went wrong (outside tester, session 23):

* under ``adapt``, a brief naming only a colour the brand forbids ("a coffee cup on a fuchsia
  tablecloth") was sent as it was, with no palette first, and the same colour in the negative
  prompt: the model was asked for fuchsia and told to avoid it in one call;
* a run refused before spending (policy ``refuse`` or ``ask``, a forbidden brand term) reported
  ``stop_cause: null``, though ``refused`` is the documented cause of a run that stops so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from brandloop.settings import Settings
from tests.api.test_cli import BRANDS, run_cli

PALETTE = "mostly the brand colours teal #0f766e, cream #fef3c7, espresso #4a2c2a"


def _policy(settings: Settings, text: str) -> None:
    folder = settings.data_dir / "policies"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acme-coffee.yaml").write_text(text, encoding="utf-8")


def _generate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, brief: str
) -> tuple[int, dict[str, Any]]:
    code, out, err = run_cli(
        capsys, "generate", brief, "--brand", str(BRANDS / "acme-coffee.yaml"), "--seed", "5",
        "--size", "128x128", "--budget", "0.2", "--no-memory", "--out", str(tmp_path / "out"),
        "--json",
    )  # fmt: skip
    assert out, err
    doc: dict[str, Any] = json.loads(out)
    return code, doc


def _attempts(capsys: pytest.CaptureFixture[str], run_id: str) -> list[dict[str, Any]]:
    code, out, err = run_cli(capsys, "runs", "show", run_id, "--json")
    assert code == 0, err
    attempts: list[dict[str, Any]] = json.loads(out)["attempts"]
    assert attempts
    return attempts


def _preflight(doc: dict[str, Any]) -> dict[str, Any]:
    (decision,) = [d for d in doc["decisions"] if d["node"] == "preflight"]
    return decision


def test_adapt_takes_a_forbidden_colour_out_of_the_prompt_and_leads_with_the_palette(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    code, doc = _generate(capsys, tmp_path, "a coffee cup on a fuchsia tablecloth")
    assert code in (0, 4), doc["reason"]
    for attempt in _attempts(capsys, doc["run_id"]):
        prompt, negative = attempt["prompt"], attempt["negative_prompt"]
        assert prompt.startswith(PALETTE + ". a coffee cup on a tablecloth."), prompt
        assert "fuchsia" not in prompt.lower() and "fuchsia" in negative, (prompt, negative)
    decision = _preflight(doc)
    assert decision["action"] == "adapt"
    assert "fuchsia taken out of the prompt" in decision["reason"], decision["reason"]
    assert "negative prompt" in decision["reason"] and "at most 5%" in decision["reason"]
    for image in doc["images"]:  # what was accepted says the same
        assert image["prompt"].startswith(PALETTE) and "fuchsia" not in image["prompt"]
        assert "fuchsia" in image["negative_prompt"]


def test_adapt_with_a_forbidden_and_an_off_palette_colour_keeps_only_the_accent(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    code, doc = _generate(capsys, tmp_path, "a cup in magenta and orange on a cream tablecloth")
    assert code in (0, 4), doc["reason"]
    for attempt in _attempts(capsys, doc["run_id"]):
        prompt = attempt["prompt"]
        assert prompt.startswith(f"{PALETTE}, with orange only as small accents. "), prompt
        assert ". a cup in orange on a cream tablecloth." in prompt, prompt
        assert "magenta" not in prompt and "magenta" in attempt["negative_prompt"]
    reason = _preflight(doc)["reason"]
    assert "orange become accents" in reason and "magenta taken out of the prompt" in reason


@pytest.mark.parametrize(
    ("policy", "brief", "action"),
    [
        ("conflicts: refuse\n", "a coffee cup on a fuchsia tablecloth", "refuse_conflict"),
        ("conflicts: ask\n", "a coffee cup on a pastel pink tablecloth", "ask"),
        (None, "instant coffee in a cup", "refuse"),  # a forbidden brand term, at intake
    ],
)
def test_a_run_refused_before_spending_says_stop_cause_refused(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    policy: str | None,
    brief: str,
    action: str,
) -> None:
    if policy is not None:
        _policy(settings, policy)
    code, doc = _generate(capsys, tmp_path, brief)
    assert code == 3, doc["reason"]
    assert doc["status"] == "refused" and doc["cost_usd"] == 0 and doc["attempts"] == 0
    assert action in [d["action"] for d in doc["decisions"]]
    assert doc["stop_cause"] == "refused", doc
