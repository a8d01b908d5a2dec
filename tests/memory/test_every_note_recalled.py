"""Every style note of a brand reaches its runs' prompts, up to 50, the nearest the brief
(docs/agent.md: "Style notes are the brand's words ... they are always recalled"); an outside
tester found only the 5 nearest the brief in the prompt, whatever else the brand had noted. A prompt that cannot hold them all
leaves out the farthest from the brief first, and says how many."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.agent.nodes.plan import fit_prompt
from brandloop.agent.runner import open_memory
from brandloop.api.cli import main
from brandloop.memory.store import MAX_RECALLED_NOTES
from brandloop.settings import Settings

ACME = Path(__file__).resolve().parents[2] / "examples/brands/acme-coffee.yaml"
NOTES = [
    "always a soft morning light",
    "use matte ceramic cups",
    "no plastic anywhere",
    "a linen napkin in every table scene",
    "shadows fall to the left",
    "the barista wears a green apron",
    "steam rises in a single curl",
]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def _generate(capsys: pytest.CaptureFixture[str], tmp_path: Path, brief: str) -> dict:
    code, out, err = cli(
        capsys, "generate", brief, "--brand", "Acme Coffee", "--size", "64x64", "--seed", "2",
        "--out", str(tmp_path / "out"), "--json",
    )  # fmt: skip
    assert code == 0, err
    return dict(json.loads(out))


def test_a_run_recalls_every_style_note_of_its_brand(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    assert cli(capsys, "brands", "add", str(ACME))[0] == 0
    for note in NOTES:
        assert cli(capsys, "memory", "add", note, "--brand", "Acme Coffee")[0] == 0
    code, out, _ = cli(capsys, "memory", "notes", "--brand", "acme_coffee", "--json")
    assert code == 0 and [n["text"] for n in json.loads(out)] == NOTES[::-1]  # newest first
    code, out, _ = cli(capsys, "memory", "notes", "--brand", "Acme Coffee")
    assert code == 0 and "Style notes of acme-coffee (7)" in out and "note-" in out
    code, _, err = cli(capsys, "memory", "notes", "--brand", "Acme Tea")
    assert code == 2 and err.count("\n") == 1 and "unknown brand 'Acme Tea'" in err
    doc = _generate(capsys, tmp_path, "a steaming cup")
    recalled = next(d for d in doc["decisions"] if d["node"] == "recall")
    assert f"{len(NOTES)} style notes" in recalled["reason"], recalled
    for image in doc["images"]:
        for note in NOTES:
            assert note in image["prompt"], (note, image["prompt"])
    assert not [d for d in doc["decisions"] if d["action"] == "fit_prompt"]


def test_a_prompt_too_short_for_every_note_leaves_out_the_farthest_first() -> None:
    def build(brief: str, notes: list[str]) -> tuple[str, str]:
        return f"{brief}. " + "; ".join(notes), ""

    notes = [f"note number {i:03d}" for i in range(200)] + ["campaign colours in this order: x"]
    prompt, _, how = fit_prompt(build, brief="a cup", style_notes=notes, limit=400, pinned=1)
    assert len(prompt) <= 400
    kept = [n for n in notes if n in prompt]
    # the nearest (first) notes stay, in order, and the campaign's colour order with them
    assert kept == [*notes[: len(kept) - 1], notes[-1]] and len(kept) > 10
    # as many as fit: one more would not
    assert len(build("a cup", [*notes[: len(kept)], notes[-1]])[0]) > 400
    assert how == f"{200 - (len(kept) - 1)} of 201 memory and style notes were left out (the " \
        "farthest from the brief first)"  # fmt: skip
    # when even the pinned one cannot stay, every note goes, then the brief is cut
    prompt, _, how = fit_prompt(build, brief="a cup " * 50, style_notes=notes, limit=100, pinned=1)
    assert len(prompt) <= 100 and "note" not in prompt and "campaign" not in prompt
    assert how.startswith("the memory and style notes were left out; the brief was cut")


def test_a_brand_with_more_notes_than_a_run_recalls_has_the_nearest_recalled(
    settings: Settings,
) -> None:
    memory = open_memory(settings)
    for i in range(MAX_RECALLED_NOTES + 10):
        memory.add_note(tenant="t", brand="b", text=f"rule {i}: keep the horizon level")
    memory.add_note(tenant="t", brand="b", text="a red umbrella always opens to the left")
    hits = memory.recall(tenant="t", brand="b", query="a red umbrella", k=5)
    notes = [h for h in hits if h.kind == "note"]
    assert len(notes) == MAX_RECALLED_NOTES
    assert notes[0].text == "a red umbrella always opens to the left"
    assert len(memory.notes(tenant="t", brand="b", limit=None)) == MAX_RECALLED_NOTES + 11


@pytest.mark.parametrize(
    "brief",
    [
        ("一杯热咖啡放在木桌上，早晨的阳光洒在杯子上。" * 200)[:3950],
        "☕" * 4000,
        "e\u0301" * 1990,  # a letter and its combining accent: never split
    ],
    ids=["chinese", "emoji", "combining"],
)
def test_a_brief_without_spaces_is_cut_not_emptied(brief: str) -> None:
    """An outside tester's 3,950-character Chinese brief (and 4,000 emoji) reached the
    provider as nothing at all: the cut looked for a space and, finding none, kept nothing."""

    def build(text: str, notes: list[str]) -> tuple[str, str]:
        return f"{text}. warm, cozy, artisanal mood for Acme Coffee, featuring coffee cup.", ""

    prompt, _, how = fit_prompt(build, brief=brief, style_notes=[], limit=4000)
    kept = prompt.split(". warm, cozy")[0]
    assert len(prompt) <= 4000 and len(kept) > 3800, (len(kept), how)
    assert brief.startswith(kept) and not brief[len(kept)].startswith("\u0301")
    assert f"the brief was cut to its first {len(kept)} of" in how
