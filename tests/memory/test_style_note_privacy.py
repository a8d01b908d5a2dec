"""Style notes: personal data in a note is redacted before it is stored, and never reaches a
prompt, a provider, a receipt or any file of the data dir; notes are kept under the brand's id
by every entry point, so a run recalls what the CLI, the API and the studio added."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.agent.runner import open_memory, run_generation
from brandloop.api.cli import main
from brandloop.api.style_notes import list_style_notes
from brandloop.domain import GenerationRequest, RunResult
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.agent.helpers import CountingProvider, add_acme

EMAIL = "bob.the.planner@example.com"
PHONE = "+44 20 7946 0958"
NOTE = f"always soft morning light, ask {EMAIL} or call {PHONE}"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def files_holding(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_a_note_added_through_the_cli_is_stored_and_used_without_its_personal_data(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    acme = Path(__file__).resolve().parents[2] / "examples/brands/acme-coffee.yaml"
    assert cli(capsys, "brands", "add", str(acme))[0] == 0
    code, out, _ = cli(capsys, "memory", "add", NOTE, "--brand", "Acme Coffee", "--json")
    assert code == 0
    added = json.loads(out)
    assert added["redacted"] == ["email", "phone"]
    assert EMAIL not in added["text"] and PHONE not in added["text"]
    assert "soft morning light" in added["text"]
    code, out, err = cli(capsys, "memory", "add", f"write to {EMAIL}", "--brand", "Acme Coffee")
    assert code == 0 and "redacted before it was stored: email" in err

    out_dir = tmp_path / "out"
    code, out, _ = cli(
        capsys, "generate", "a steaming cup", "--brand", "Acme Coffee", "--size", "64x64",
        "--seed", "1", "--out", str(out_dir), "--json",
    )  # fmt: skip
    assert code == 0, out
    prompts = [image["prompt"] for image in json.loads(out)["images"]]
    assert prompts and all("soft morning light" in p for p in prompts), prompts
    for needle in (EMAIL, PHONE, "7946 0958"):
        assert needle not in out
        assert files_holding(settings.data_dir, needle) == []
        assert files_holding(out_dir, needle) == []


async def _run_recalling(
    settings: Settings, db: Database, seed: int, note: str
) -> tuple[str, RunResult]:
    """A run of Acme Coffee whose memory holds ``note``, written straight into memory as a
    note added before redaction existed would be: what the provider was sent, the result."""
    brand = add_acme(settings, db)
    with db.session() as session:
        row = crud.get_brand(session, tenant="default", ref=brand)
        assert row is not None
        brand_id = row.id
    open_memory(settings).add_note(tenant="default", brand=brand_id, text=note)
    provider = CountingProvider()
    result = await run_generation(
        GenerationRequest(brief="a steaming cup", brand=brand, size="64x64", seed=seed),
        settings=settings,
        db=db,
        providers={"procedural": provider},
    )
    assert provider.calls
    return " ".join(c.prompt + " " + (c.negative_prompt or "") for c in provider.calls), result


async def test_a_note_stored_before_redaction_is_redacted_when_a_run_recalls_it(
    settings: Settings, db: Database, seed: int
) -> None:
    sent, result = await _run_recalling(settings, db, seed, NOTE)
    assert "soft morning light" in sent
    assert EMAIL not in sent and "7946" not in sent
    recalled = next(d for d in result.decisions if d.node == "recall")
    assert "personal data redacted from the style notes: email, phone" in recalled.reason
    assert EMAIL not in result.model_dump_json()


def test_notes_once_keyed_by_the_brand_name_move_to_its_id_when_listed(
    settings: Settings, db: Database
) -> None:
    brand = add_acme(settings, db)
    with db.session() as session:
        row = crud.get_brand(session, tenant="default", ref=brand)
        assert row is not None
        memory = open_memory(settings)
        # what the studio stored before 2026-12-04: the brand's name as the key
        legacy_id = memory.add_note(tenant="default", brand=row.name, text="never neon signage")
        listed = list_style_notes(memory, tenant="default", brand=row)
        assert [n.id for n in listed] == [legacy_id]
        assert memory.notes(tenant="default", brand=row.name) == []
        assert [n.id for n in memory.notes(tenant="default", brand=row.id)] == [legacy_id]
        # twice is the same
        assert [n.id for n in list_style_notes(memory, tenant="default", brand=row)] == [legacy_id]


KEY = "sk-proj-QwE123rTy456UiO789pAs012DfG345hJk"


def test_an_api_key_in_a_note_is_redacted_before_it_is_stored_and_never_reaches_a_run(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """A key pasted into a note was stored as typed, rendered into every later prompt of the
    brand and signed into each image's receipt (an outside tester); a brief's was redacted."""
    acme = Path(__file__).resolve().parents[2] / "examples/brands/acme-coffee.yaml"
    assert cli(capsys, "brands", "add", str(acme))[0] == 0
    code, out, err = cli(
        capsys, "memory", "add", f"always {KEY} soft light", "--brand", "Acme Coffee", "--json"
    )
    assert code == 0, err
    added = json.loads(out)
    assert added["redacted"] == ["key"]
    assert added["text"] == "always [redacted key] soft light"
    out_dir = tmp_path / "out"
    code, out, _ = cli(
        capsys, "generate", "a steaming cup", "--brand", "Acme Coffee", "--size", "64x64",
        "--seed", "1", "--out", str(out_dir), "--json",
    )  # fmt: skip
    assert code == 0, out
    assert all("soft light" in image["prompt"] for image in json.loads(out)["images"])
    for needle in (KEY, "QwE123rTy456"):
        assert needle not in out
        assert files_holding(settings.data_dir, needle) == []
        assert files_holding(out_dir, needle) == []


async def test_a_key_in_a_note_stored_before_redaction_is_redacted_when_recalled(
    settings: Settings, db: Database, seed: int
) -> None:
    sent, result = await _run_recalling(settings, db, seed, f"warm light {KEY}")
    assert "warm light" in sent and KEY not in sent
    recalled = next(d for d in result.decisions if d.node == "recall")
    assert "redacted from the style notes: key" in recalled.reason
    assert KEY not in result.model_dump_json()


def test_a_note_is_held_to_its_limit_without_the_padding_that_is_never_kept(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    acme = Path(__file__).resolve().parents[2] / "examples/brands/acme-coffee.yaml"
    assert cli(capsys, "brands", "add", str(acme))[0] == 0
    code, out, err = cli(
        capsys, "memory", "add", "  " + "w" * 4000 + "   ", "--brand", "Acme Coffee", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["text"] == "w" * 4000
    code, _, err = cli(capsys, "memory", "add", " " + "w" * 4001, "--brand", "Acme Coffee")
    assert code == 2 and "note is 4001 characters; the limit is 4000" in err
