"""Brand names through the CLI, on SQLite and PostgreSQL: a kit file or a name spelt another way
(case, separators) is the brand it names, so a run uses the kit it was given; a name two
brands share (data from before the rule) is refused with both ids, exit 2, nothing changed,
until ``brands rename`` tells them apart."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from brandloop.registry.db import Database
from brandloop.registry.models import BrandRow
from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, data_snapshot, run_cli

ACME = BRANDS / "acme-coffee.yaml"
RED = [{"hex": "#cc0000", "role": "primary", "name": "red"},
       {"hex": "#ffffff", "role": "background", "name": "white"}]  # fmt: skip


def kit_file(tmp_path: Path, name: str, palette: list[dict[str, str]] | None = None) -> Path:
    kit = yaml.safe_load(ACME.read_text())
    kit["name"] = name
    if palette is not None:
        kit["palette"] = palette
    path = tmp_path / "kits" / f"{len(list(tmp_path.glob('kits/*')))}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(kit))
    return path


def brands(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    code, out, err = run_cli(capsys, "brands", "list", "--json")
    assert code == 0, err
    listed: list[dict[str, object]] = json.loads(out)
    return listed


def generate(capsys: pytest.CaptureFixture[str], brand: str, *more: str) -> tuple[int, str, str]:
    # each run delivers to a folder of its own: --out refuses another run's receipt.json
    out_dir = Path(tempfile.mkdtemp(prefix="out-", dir=get_settings().data_dir.parent))
    return run_cli(
        capsys, "generate", "a cup", "--brand", brand, "--size", "64x64", "--seed", "5",
        "--no-memory", "--out", str(out_dir), *more,
    )  # fmt: skip


def prompts(out: str) -> list[str]:
    """The prompts of the run's delivered images (at least one)."""
    run = json.loads(out)
    found = [image["prompt"] for image in run["images"]]
    assert run["status"] == "succeeded" and found, run
    return found


def test_a_kit_file_spelt_another_way_is_the_brand_and_its_kit_is_used(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    code, out, _ = run_cli(capsys, "brands", "add", str(ACME))
    assert code == 0
    (acme,) = brands(capsys)
    red = kit_file(tmp_path, "acme coffee", RED)
    # a kit file never replaces the stored kit: `brands add` does
    code, out, err = generate(capsys, str(red), "--json")
    assert code == 2 and "differs from the stored kit of brand 'Acme Coffee'" in err, err
    assert brands(capsys)[0]["kit"]["palette"][0]["hex"] == "#0f766e"  # type: ignore[index]
    assert run_cli(capsys, "brands", "add", str(red))[0] == 0
    code, out, err = generate(capsys, str(red), "--json")
    assert code == 0, err
    assert all("#cc0000" in p and "#0f766e" not in p for p in prompts(out)), out
    (stored,) = brands(capsys)
    assert (stored["id"], stored["name"]) == (acme["id"], "Acme Coffee")
    assert [c["hex"] for c in stored["kit"]["palette"]] == ["#cc0000", "#ffffff"]  # type: ignore[index]

    for ref in ("ACME COFFEE", "acme_coffee", "Acme-Coffee "):
        code, out, err = generate(capsys, ref, "--json")
        assert code == 0, (ref, err)
        assert all("#cc0000" in p for p in prompts(out)), ref
    code, out, err = generate(capsys, "\u0410cme Coffee")  # a Cyrillic A: no brand
    assert code == 2 and "unknown brand" in err

    # the three names that share the policy file policies/acme-coffee.yaml are one brand
    for name in ("Acme_Coffee", "Acme-Coffee", "acme.coffee"):
        code, out, err = run_cli(capsys, "brands", "add", str(kit_file(tmp_path, name)))
        assert code == 0, err
        assert out.startswith("brand Acme Coffee ") and f"(the kit says '{name}')" in out, out
    assert [b["id"] for b in brands(capsys)] == [acme["id"]]


def test_a_name_two_brands_share_is_refused_until_one_is_renamed(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    code, _, _ = run_cli(capsys, "brands", "add", str(ACME))
    assert code == 0
    (acme,) = brands(capsys)
    # what migration 0900 leaves of two brands stored under 'Acme Coffee' and 'acme coffee'
    db = Database(get_settings().resolved_database_url)
    with db.engine.begin() as conn:
        conn.execute(sa.update(BrandRow).values(name_key=None))
        kit = {**yaml.safe_load(ACME.read_text()), "name": "acme coffee", "palette": RED}
        row = {"id": "brand_legacy", "tenant": "default", "name": "acme coffee", "kit": kit}
        conn.execute(sa.insert(BrandRow).values(**row, name_key=None, created_at=sa.func.now(),
                                                updated_at=sa.func.now()))  # fmt: skip
    db.dispose()
    run_cli(capsys, "models", "list")  # first use merges the catalog: not part of the refusal
    before = data_snapshot(data_dir)
    for argv in (
        ["generate", "a cup", "--brand", "ACME COFFEE", "--size", "64x64"],
        ["generate", "a cup", "--brand", str(kit_file(tmp_path, "Acme Coffee")), "--size", "64x64"],
        ["brands", "add", str(ACME)],
        ["brands", "rename", "acme coffee", "Acme Roasters"],
        ["brands", "rename", "brand_legacy", "ACME_COFFEE"],  # still both
        ["brands", "rename", "brand_legacy", "Café"],
        ["brands", "rename", "no such brand", "Acme Roasters"],
    ):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2, (argv, out, err)
        assert err.count("\n") == 1 and err.startswith("brandloop: error: "), err
        if argv[0] == "generate" or argv[1] == "add" or argv[2] == "acme coffee":
            assert "is ambiguous" in err and acme["id"] in err and "brand_legacy" in err, err
    assert data_snapshot(data_dir) == before
    code, out, err = run_cli(capsys, "brands", "list")  # the list says which share a name
    assert code == 0, err
    assert f"brands {acme['id']}, brand_legacy share one name" in " ".join(out.split()), out
    code, out, err = generate(capsys, str(acme["id"]), "--json")  # by id: never ambiguous
    assert code == 0, err
    code, out, err = run_cli(capsys, "brands", "rename", "brand_legacy", "Acme Red")
    assert (code, out) == (0, "brand brand_legacy is now Acme Red\n"), err
    code, out, err = generate(capsys, "acme coffee", "--json")
    assert code == 0, err
    assert all("#0f766e" in p for p in prompts(out))
    assert "share one name" not in run_cli(capsys, "brands", "list")[1]
    code, out, err = generate(capsys, "acme red", "--json")
    assert code == 0, err
    assert all("#cc0000" in p for p in prompts(out))
