"""Under the ``adapt`` conflict policy a colour the brand forbids is taken out of the brief's
words (docs/agent.md, "Pre-flight conflict check"), through ``brandloop generate --json`` on
SQLite and PostgreSQL: the words that only led into it ("in", "a", "and") go with it, "a"/"an"
fits the word after, and no doubled space or comma is left. Before session 24 "a cup in
fuchsia, on a table" was sent as "a cup in, on a table"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.settings import Settings
from tests.api.test_cli import BRANDS, run_cli

PALETTE = "mostly the brand colours teal #0f766e, cream #fef3c7, espresso #4a2c2a"


@pytest.mark.parametrize(
    ("brief", "sent"),
    [
        ("a coffee cup in fuchsia, on a wooden table", "a coffee cup, on a wooden table"),
        ("a coffee cup in magenta on a cream counter", "a coffee cup on a cream counter"),
        (
            "a coffee cup in fuchsia and a croissant on a marble counter",
            "a coffee cup and a croissant on a marble counter",
        ),
        ("a barista in a fuchsia apron pouring a coffee cup", "a barista in an apron pouring a coffee cup"),
        ("a coffee cup with teal, magenta and cream stripes", "a coffee cup with teal and cream stripes"),
        ("a coffee cup on a table, all in fuchsia", "a coffee cup on a table"),
        ("a coffee cup and a saucer with a magenta", "a coffee cup and a saucer"),
    ],
)  # fmt: skip
def test_a_forbidden_colour_leaves_no_dangling_words_in_the_prompt(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, brief: str, sent: str
) -> None:
    code, out, err = run_cli(
        capsys, "generate", brief, "--brand", str(BRANDS / "acme-coffee.yaml"), "--seed", "5",
        "--size", "64x64", "--budget", "0.05", "--no-memory", "--out", str(tmp_path / "out"),
        "--json",
    )  # fmt: skip
    assert out, err
    doc = json.loads(out)
    assert code in (0, 4), doc["reason"]
    code, out, err = run_cli(capsys, "runs", "show", doc["run_id"], "--json")
    assert code == 0, err
    attempts = json.loads(out)["attempts"]
    assert attempts
    for attempt in attempts:
        prompt = attempt["prompt"]
        assert prompt.startswith(f"{PALETTE}. {sent}."), prompt
        assert "  " not in prompt and ",," not in prompt and " ," not in prompt, prompt
        assert "fuchsia" not in prompt and "magenta" not in prompt, prompt
