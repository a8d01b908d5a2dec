"""The CLI's help reads as prose: each command's line in its group's list is the first
paragraph of its help on one line, not the docstring's source line breaks, no
reStructuredText markup shows, and a group's summary names every command it has."""

from __future__ import annotations

import re

import pytest

from tests.api.test_cli import run_cli


def command_lines(text: str) -> dict[str, list[str]]:
    """Each command of a help page's Commands panel and the panel lines of its help text
    (the panel's border and the name column stripped)."""
    panel = text.split("Commands", 1)[1]
    rows: dict[str, list[str]] = {}
    name = ""
    for line in panel.splitlines():
        inner = line.strip().strip("│╰╮╯─").rstrip()
        match = re.match(r"^\s*(\S+)\s{2,}(.*)$", inner)
        if match and not inner.startswith("  "):
            name = match.group(1)
            rows[name] = [match.group(2).strip()]
        elif name and inner.strip():
            rows[name].append(inner.strip())
    return rows


@pytest.mark.parametrize("group", [(), ("runs",), ("templates",), ("memory",)])
def test_each_commands_summary_is_its_first_paragraph_on_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, group: tuple[str, ...]
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # wide enough that nothing the panel shows wraps
    code, out, _ = run_cli(capsys, *group, "--help")
    assert code == 0
    assert "``" not in out
    rows = command_lines(out)
    assert rows, out
    for name, lines in rows.items():
        # at this width every summary fits one line: a second is a docstring's line break
        assert len(lines) == 1, (name, lines)
    if group == ():
        assert "contrast, colourfulness, format" in rows["score"][0]
        assert rows["serve"][0].startswith("Serve the studio at `/` and the HTTP API (`/v1`")


def test_the_runs_group_names_all_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "runs", "--help")
    assert code == 0
    summary = out.split("Options", 1)[0]
    for command in command_lines(out):
        assert command in summary, (command, summary)
