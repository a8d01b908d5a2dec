"""``--brand`` given a kit file never replaces a stored kit, read-only commands never add a
brand, and a brand name is a name whatever files the working directory holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.settings import Settings
from tests.memory.test_memory_cli import ACME, brand_id_of, cli

NORDLYS = str(Path(ACME).parent / "nordlys-outdoor.yaml")


def stored_primary(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    code, out, _ = cli(capsys, "brands", "list", "--json")
    assert code == 0
    return {b["name"]: b["kit"]["palette"][0]["hex"] for b in json.loads(out)}


def test_a_kit_file_never_replaces_the_stored_kit(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    violet = tmp_path / "nordlys-violet.yaml"
    violet.write_text(
        Path(NORDLYS)
        .read_text()
        .replace("#1e3a8a", "#7c3aed")
        .replace("name: navy", "name: violet")
    )
    assert cli(capsys, "brands", "add", str(violet))[0] == 0
    assert stored_primary(capsys) == {"Nordlys Outdoor": "#7c3aed"}
    # the team's old file, on a read-only command: it reverted the kit to navy, exit 0
    for argv in (
        ("memory", "search", "tent", "--brand", NORDLYS),
        ("memory", "add", "keep it airy", "--brand", NORDLYS),
        ("generate", "a tent", "--brand", NORDLYS, "--seed", "1"),
    ):
        code, out, err = cli(capsys, *argv)
        assert code == 2, (argv, out, err)
        assert err.count("\n") == 1 and "differs from the stored kit" in err, err
        assert f"brandloop brands add {NORDLYS}" in err
        assert stored_primary(capsys) == {"Nordlys Outdoor": "#7c3aed"}
    # the file the brand was stored from is the stored kit: used as it is
    code, out, err = cli(capsys, "memory", "add", "keep it airy", "--brand", str(violet))
    assert code == 0, err
    code, out, _ = cli(capsys, "memory", "search", "airy", "--brand", str(violet), "--json")
    assert code == 0 and json.loads(out)[0]["text"] == "keep it airy"
    # a brand not stored yet: read-only commands add nothing (it was added, exit 0)
    code, out, err = cli(capsys, "memory", "search", "coffee", "--brand", ACME)
    assert code == 2 and err.count("\n") == 1 and "unknown brand 'Acme Coffee'" in err, err
    assert f"brandloop brands add {ACME}" in err
    assert stored_primary(capsys) == {"Nordlys Outdoor": "#7c3aed"}
    # generate still adds a brand from its kit file (the README's first run)
    code, out, err = cli(capsys, "generate", "a coffee cup", "--brand", ACME, "--seed", "1")
    assert code == 0, err
    assert stored_primary(capsys) == {"Acme Coffee": "#0f766e", "Nordlys Outdoor": "#7c3aed"}


def test_a_brand_name_is_not_read_as_a_file_in_the_working_directory(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cli(capsys, "brands", "add", NORDLYS)[0] == 0
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Nordlys Outdoor").write_text("meeting notes\n")
    # was exit 2: "Nordlys Outdoor: expected a mapping of brand fields, got str"
    code, out, err = cli(capsys, "memory", "add", "keep it airy", "--brand", "Nordlys Outdoor")
    assert code == 0, err
    code, out, err = cli(capsys, "memory", "search", "airy", "--brand", "Nordlys Outdoor")
    assert code == 0 and "keep it airy" in out, err
    code, out, err = cli(capsys, "generate", "a tent", "--brand", "Nordlys Outdoor", "--seed", "1")
    assert code == 0, err


def test_a_brand_renamed_to_another_brands_id_is_refused_and_its_notes_stay(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """The outside tester's reproduction: `brands rename "Nordlys Outdoor" <Acme's id>` was
    accepted, and `memory notes --brand <Nordlys's id>` then moved Acme's notes to Nordlys."""
    assert cli(capsys, "brands", "add", ACME)[0] == 0
    assert cli(capsys, "brands", "add", NORDLYS)[0] == 0
    acme, nordlys = brand_id_of(settings, "Acme Coffee"), brand_id_of(settings, "Nordlys Outdoor")
    assert cli(capsys, "memory", "add", "always warm amber light", "--brand", acme)[0] == 0

    code, out, err = cli(capsys, "brands", "rename", "Nordlys Outdoor", acme)
    assert code == 2 and "spelt like a brand id" in err, (out, err)
    kit = tmp_path / "id-named.yaml"
    kit.write_text(Path(NORDLYS).read_text().replace("Nordlys Outdoor", acme.upper()))
    code, out, err = cli(capsys, "brands", "add", str(kit))
    assert code == 2 and "spelt like a brand id" in err, (out, err)

    code, out, _ = cli(capsys, "memory", "notes", "--brand", nordlys, "--json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = cli(capsys, "memory", "notes", "--brand", acme, "--json")
    assert [n["text"] for n in json.loads(out)] == ["always warm amber light"]
