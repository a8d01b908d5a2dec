"""`brandloop memory add|search|forget` and what the loop remembers: prompts and descriptors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.agent.runner import open_memory, run_generation
from brandloop.api.cli import main
from brandloop.api.cli.memory import parse_before
from brandloop.domain import GenerationRequest
from brandloop.errors import BadInputError
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.agent.helpers import AUTUMN, CountingProvider, add_acme

ACME = str(Path(__file__).resolve().parents[2] / "examples/brands/acme-coffee.yaml")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def brand_id_of(settings: Settings, ref: str) -> str:
    """Memory is keyed by the brand's registry id."""
    database = Database.from_settings(settings)
    try:
        with database.session() as session:
            row = crud.get_brand(session, tenant="default", ref=ref)
            assert row is not None
            return row.id
    finally:
        database.dispose()


def test_add_search_forget_by_id_really_deletes(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    assert cli(capsys, "brands", "add", ACME)[0] == 0  # memory commands add no brand
    code, out, _ = cli(
        capsys, "memory", "add", "always a soft morning light", "--brand", ACME, "--json"
    )
    assert code == 0
    note = json.loads(out)
    cli(capsys, "memory", "add", "never neon signage", "--brand", "Acme Coffee")
    code, out, _ = cli(
        capsys, "memory", "search", "gentle dawn light", "--brand", "Acme Coffee", "--json"
    )
    hits = json.loads(out)
    assert hits[0]["id"] == note["id"] and hits[0]["kind"] == "note"

    code, out, _ = cli(
        capsys, "memory", "forget", "--brand", "Acme Coffee", "--id", note["id"], "--json"
    )
    assert json.loads(out)["deleted"] == 1
    memory = open_memory(settings)
    brand_id = brand_id_of(settings, "Acme Coffee")
    assert memory.count(tenant="default", brand=brand_id) == 1
    assert all(
        h.id != note["id"]
        for h in memory.search(tenant="default", brand=brand_id, query="soft morning light")
    )
    code, _, err = cli(capsys, "memory", "forget", "--brand", "Acme Coffee", "--id", note["id"])
    assert code == 2 and "no memory" in err


def test_forget_before_a_date_and_bad_dates(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    assert cli(capsys, "brands", "add", ACME)[0] == 0  # memory commands add no brand
    cli(capsys, "memory", "add", "warm wood textures", "--brand", ACME)
    code, out, _ = cli(
        capsys, "memory", "forget", "--brand", "Acme Coffee", "--before", "2000-01-01", "--json"
    )
    assert json.loads(out)["deleted"] == 0
    code, out, _ = cli(
        capsys, "memory", "forget", "--brand", "Acme Coffee", "--before", "2999-01-01", "--json"
    )
    assert json.loads(out)["deleted"] == 1
    code, _, err = cli(
        capsys, "memory", "forget", "--brand", "Acme Coffee", "--before", "yesterday"
    )
    assert code == 2 and "not a date" in err
    code, _, err = cli(capsys, "memory", "forget", "--brand", "Acme Coffee")
    assert code == 2
    assert parse_before("2026-01-02").tzinfo is not None
    with pytest.raises(BadInputError):
        parse_before("2026-13-01")


async def test_a_run_remembers_its_prompt_emphasis_and_colours_and_the_next_recalls_them(
    settings: Settings,
    db: Database,
) -> None:
    brand = add_acme(settings, db)
    request = GenerationRequest(
        brief=AUTUMN, brand=brand, count=1, size="128x128", seed=7, campaign_id="fall"
    )
    first = await run_generation(
        request, settings=settings, db=db, providers={"procedural": CountingProvider()}
    )
    assert first.images
    memory = open_memory(settings)
    described = memory.descriptors(
        tenant="default", brand=brand_id_of(settings, brand), campaign_id="fall"
    )
    assert len(described) == 1 and str(described[0].metadata["colours"]).startswith("#")
    second = await run_generation(
        request.model_copy(update={"seed": 99}),
        settings=settings,
        db=db,
        providers={"procedural": CountingProvider()},
    )
    recalled = next(d for d in second.decisions if d.node == "recall")
    assert "campaign colours" in recalled.reason
    # the autumn brief names orange and red: the palette goes first from the start (adapt)
    assert any(d.action in ("strengthen_palette", "adapt") for d in first.decisions)
    assert "starts strict" in recalled.reason
    assert not any(d.action == "strengthen_palette" for d in second.decisions)
