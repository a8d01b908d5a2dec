"""`brandloop memory forget` on the on-disk store: the forgotten text cannot be read back from
any file of the data dir's Chroma (it was left in four places of chroma.sqlite3's free space:
metadata, string index, write-ahead log, full-text tables; and in the unused slots of an HNSW
index, which hnswlib writes from uninitialised memory)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from brandloop.memory.shared import scrub_index
from brandloop.settings import Settings
from tests.memory.test_memory_cli import ACME, cli

SECRET = b"quokkastein"
ROOT = Path(__file__).resolve().parents[2]


def _copies(chroma_dir: Path) -> dict[str, int]:
    """How many times each file of ``chroma_dir`` holds the text, by path: a failure names the
    file (the flaky one took a day to place)."""
    found = {
        str(p.relative_to(chroma_dir)): p.read_bytes().lower().count(SECRET)
        for p in chroma_dir.rglob("*")
        if p.is_file()
    }
    return {path: count for path, count in found.items() if count}


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
    assert _copies(chroma_dir)  # the check can see the text while it is stored

    code, out, err = cli(
        capsys, "memory", "forget", "--brand", "Acme Coffee", "--id", secret, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["deleted"] == 1
    assert _copies(chroma_dir) == {}

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
    assert _copies(chroma_dir) == {}


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
    assert _copies(chroma_dir) == {}
    code, out, _ = cli(capsys, "memory", "search", "latte", "--brand", "Acme Coffee", "--json")
    left = [h for h in json.loads(out) if h["kind"] == "prompt"]
    assert left and all("quokkastein" not in h["text"] for h in left)
    assert {h["id"] for h in left} == {h["id"] for h in prompts} - {h["id"] for h in carried}


def test_forgetting_a_note_keeps_the_prompts_of_runs_that_never_recalled_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_dir: Path
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
    assert _copies(settings.resolved_chroma_path) == {}


def _indexes(chroma_dir: Path) -> list[Path]:
    return sorted(p.parent for p in chroma_dir.glob("*/header.bin"))


def _slack(index: Path) -> tuple[int, int]:
    """Where the unused slots of ``index``'s data_level0.bin and length.bin begin."""
    _, _, _, count, per_element = struct.unpack_from("<iQQQQ", (index / "header.bin").read_bytes())
    return count * per_element, count * 4


def test_forget_zeroes_what_an_index_holds_past_its_last_element(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    """About one run in three of the tests/memory sequence found a forgotten text in an
    index's data_level0.bin: hnswlib writes a new index's 100 slots from memory it never
    initialised, and the unused ones held a run's receipt, freed earlier in the process. The
    bytes are put where hnswlib leaves them, so the check does not hang on the heap's state;
    the next test makes them as a process does."""
    cli(capsys, "brands", "add", ACME)
    kept = _add(capsys, "warm wood and soft light")
    secret = _add(capsys, "zanzibar lighting")
    chroma_dir = settings.resolved_chroma_path
    (index,) = _indexes(chroma_dir)
    data_from, lengths_from = _slack(index)
    for name, start in (("data_level0.bin", data_from), ("length.bin", lengths_from)):
        with (index / name).open("r+b") as f:
            assert f.seek(0, os.SEEK_END) > start + 40
            f.seek(start + 17)
            f.write(b"Ms Winifred Quokkastein")
    assert _copies(chroma_dir) == {
        f"{index.name}/data_level0.bin": 1,
        f"{index.name}/length.bin": 1,
    }

    code, out, err = cli(capsys, "memory", "forget", "--brand", "Acme Coffee", "--id", secret,
                         "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["deleted"] == 1, err
    assert _copies(chroma_dir) == {}
    assert scrub_index(index) == 0  # nothing left to zero: a second pass only reads

    # the index is whole: its elements are found, and it takes new ones
    later = _add(capsys, "pale roasts on a white counter")
    code, out, err = cli(capsys, "memory", "search", "soft light", "--brand", "Acme Coffee",
                         "--json")  # fmt: skip
    assert code == 0, err
    assert {h["id"] for h in json.loads(out)} == {kept, later}


_HEAP_SPRAY = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path

    from brandloop.memory import MiniLMEmbeddingFunction
    from brandloop.memory.store import BrandMemory, make_chroma_store
    from brandloop.settings import Settings

    memory = BrandMemory(
        make_chroma_store(Settings(chroma_path=Path(sys.argv[1]))), MiniLMEmbeddingFunction()
    )

    def hold_and_free():
        # an 8 MB block mmapped and unmapped raises glibc's mmap threshold, so the 160 KB of a
        # new index come from the heap, where this thread's freed text lies; its arena goes to
        # the next thread made, as Chroma's are
        block = bytearray(8 << 20)
        del block
        texts = [(b"x" * 100 + b"Ms Winifred Quokkastein") * 1600 for _ in range(20)]
        del texts

    threads = [threading.Thread(target=hold_and_free) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    memory.add_note(tenant="default", brand="brand-1", text="warm wood and soft light")
    print(memory.count(tenant="default", brand="brand-1"))
    """
)


def test_a_new_index_holds_none_of_the_processs_freed_memory(tmp_path: Path) -> None:
    """What the sequence did by chance, made on purpose in a process of its own: text this
    process held and freed, and the first note of a brand, whose new index is written from
    memory hnswlib never cleared. On glibc each of the five runs of this tried before the store
    zeroed new indexes' unused slots left over 1,300 copies of the text in data_level0.bin."""
    chroma_dir = tmp_path / "chroma"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANDLOOP_")}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", _HEAP_SPRAY, str(chroma_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1"]
    assert _indexes(chroma_dir)
    assert _copies(chroma_dir) == {}
