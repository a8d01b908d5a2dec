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
from brandloop.domain import GenerationRequest
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
    assert code == 0 and "personal data redacted before it was stored: email" in err

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


async def test_a_note_stored_before_redaction_is_redacted_when_a_run_recalls_it(
    settings: Settings, db: Database, seed: int
) -> None:
    brand = add_acme(settings, db)
    with db.session() as session:
        row = crud.get_brand(session, tenant="default", ref=brand)
        assert row is not None
        brand_id = row.id
    # written straight into memory, as a note added before redaction existed would be
    open_memory(settings).add_note(tenant="default", brand=brand_id, text=NOTE)
    provider = CountingProvider()
    result = await run_generation(
        GenerationRequest(brief="a steaming cup", brand=brand, size="64x64", seed=seed),
        settings=settings,
        db=db,
        providers={"procedural": provider},
    )
    assert provider.calls
    sent = " ".join(c.prompt + " " + (c.negative_prompt or "") for c in provider.calls)
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
