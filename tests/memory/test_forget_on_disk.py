"""`brandloop memory forget` on the on-disk store: the forgotten text cannot be read back from
any file of the data dir's Chroma (it was left in four places of chroma.sqlite3's free space:
metadata, string index, write-ahead log, full-text tables)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.settings import Settings
from tests.memory.test_memory_cli import ACME, cli

SECRET = b"quokkastein"


def _copies(chroma_dir: Path) -> int:
    return sum(p.read_bytes().lower().count(SECRET) for p in chroma_dir.rglob("*") if p.is_file())


def _add(capsys: pytest.CaptureFixture[str], text: str) -> str:
    code, out, err = cli(capsys, "memory", "add", text, "--brand", "Acme Coffee", "--json")
    assert code == 0, err
    return str(json.loads(out)["id"])


def test_forget_leaves_no_copy_of_the_text_in_the_chroma_files(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    cli(capsys, "brands", "add", ACME)
    for i in range(3):
        _add(capsys, f"filler note {i}: warm wood and soft light")
    secret = _add(capsys, "Ms Winifred Quokkastein prefers pale roasts")
    chroma_dir = settings.resolved_chroma_path
    assert _copies(chroma_dir) > 0  # the check can see the text while it is stored

    code, out, err = cli(
        capsys, "memory", "forget", "--brand", "Acme Coffee", "--id", secret, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["deleted"] == 1
    assert _copies(chroma_dir) == 0

    # the memory goes on working in the same process and in a new one
    later = _add(capsys, "Mr Quokkastein's cousin likes dark roasts")
    code, out, err = cli(
        capsys, "memory", "search", "soft light", "--brand", "Acme Coffee", "--json"
    )
    assert code == 0, err
    hits = json.loads(out)
    assert {h["id"] for h in hits} >= {later} and secret not in {h["id"] for h in hits}
    assert len([h for h in hits if h["text"].startswith("filler")]) == 3

    code, out, err = cli(
        capsys, "memory", "forget", "--brand", "Acme Coffee", "--before", "2999-01-01", "--json"
    )
    assert code == 0 and json.loads(out)["deleted"] == 4, err
    assert _copies(chroma_dir) == 0


def test_a_forgotten_note_takes_the_accepted_prompts_that_carried_it_along(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """A run puts the brand's notes into its prompt, and remembers an accepted prompt: the
    note's text was still there after the note was forgotten (an outside tester's grep found
    it in chroma.sqlite3, and `memory search` listed the prompt)."""
    cli(capsys, "brands", "add", ACME)

    def generate(brief: str, seed: str) -> None:
        code, _, err = cli(
            capsys, "generate", brief, "--brand", "Acme Coffee", "--size", "64x64",
            "--seed", seed, "--out", str(tmp_path / seed),
        )  # fmt: skip
        assert code == 0, err

    generate("a steaming cup", "1")  # before the note: its prompt does not hold it
    secret = _add(capsys, "zanzibar quokkastein lighting")
    generate("a latte on a counter", "2")
    chroma_dir = settings.resolved_chroma_path
    code, out, _ = cli(capsys, "memory", "search", "latte", "--brand", "Acme Coffee", "--json")
    prompts = [h for h in json.loads(out) if h["kind"] == "prompt"]
    carried = [h for h in prompts if "quokkastein" in h["text"]]
    assert carried and len(prompts) > len(carried)  # the check can see what it must remove

    code, out, err = cli(
        capsys, "memory", "forget", "--brand", "Acme Coffee", "--id", secret, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["deleted"] == 1 + len(carried)
    assert _copies(chroma_dir) == 0
    code, out, _ = cli(capsys, "memory", "search", "latte", "--brand", "Acme Coffee", "--json")
    left = [h for h in json.loads(out) if h["kind"] == "prompt"]
    assert left and all("quokkastein" not in h["text"] for h in left)
    assert {h["id"] for h in left} == {h["id"] for h in prompts} - {h["id"] for h in carried}


def test_forgetting_a_note_keeps_the_prompts_of_runs_that_never_recalled_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The outside tester's data loss: the note "cozy" took the prompt of a run made before it
    existed, because the kit's tone puts "cozy" in every Acme prompt."""
    cli(capsys, "brands", "add", ACME)

    def generate(brief: str, seed: str) -> list[dict[str, str]]:
        code, _, err = cli(
            capsys, "generate", brief, "--brand", "Acme Coffee", "--size", "64x64",
            "--seed", seed, "--out", str(tmp_path / seed),
        )  # fmt: skip
        assert code == 0, err
        code, out, _ = cli(capsys, "memory", "search", brief, "--brand", "Acme Coffee", "--json")
        return [h for h in json.loads(out) if h["kind"] == "prompt"]

    before = generate("a steaming cup", "3")
    assert len(before) == 1 and "cozy" in before[0]["text"]  # the tone's word
    note = _add(capsys, "cozy")

    code, out, err = cli(capsys, "memory", "forget", "--brand", "Acme Coffee", "--id", note,
                         "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["deleted"] == 1  # the note alone
    code, out, _ = cli(capsys, "memory", "search", "cup", "--brand", "Acme Coffee", "--json")
    assert before[0]["id"] in {h["id"] for h in json.loads(out)}

    # a run that recalled it: its prompt goes with the note
    note = _add(capsys, "cozy")
    during = [h for h in generate("a latte on a counter", "4") if h["id"] != before[0]["id"]]
    assert len(during) == 1
    code, out, err = cli(capsys, "memory", "forget", "--brand", "Acme Coffee", "--id", note,
                         "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["deleted"] == 2, err
    code, out, _ = cli(capsys, "memory", "search", "cup", "--brand", "Acme Coffee", "--json")
    left = {h["id"] for h in json.loads(out) if h["kind"] == "prompt"}
    assert left == {before[0]["id"]}


def test_a_forgotten_note_of_several_lines_leaves_no_copy_in_the_prompts_either(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """The outside tester's reproduction: a note with a newline and repeated spaces is in the
    rendered prompt on one line; after the forget, `memory search` still listed the prompt and
    chroma.sqlite3 held the text four times."""
    cli(capsys, "brands", "add", ACME)
    note = _add(capsys, "beans quokkastein\non the   counter")
    code, _, err = cli(
        capsys, "generate", "a latte", "--brand", "Acme Coffee", "--size", "64x64",
        "--seed", "2", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = cli(capsys, "memory", "search", "latte", "--brand", "Acme Coffee", "--json")
    assert any("beans quokkastein on the counter" in h["text"] for h in json.loads(out))

    code, out, err = cli(capsys, "memory", "forget", "--brand", "Acme Coffee", "--id", note,
                         "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["deleted"] == 2, err
    code, out, _ = cli(capsys, "memory", "search", "latte", "--brand", "Acme Coffee", "--json")
    assert all("quokkastein" not in h["text"] for h in json.loads(out))
    assert _copies(settings.resolved_chroma_path) == 0
