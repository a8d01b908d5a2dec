"""The CLI end to end on the embedded defaults, and every bad input the foundation names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from brandloop.api.cli import main
from brandloop.artifacts import RECEIPT_KEY, read_png_text
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
BRANDS = ROOT / "examples" / "brands"
BRIEF = (ROOT / "examples" / "briefs" / "morning-ritual.txt").read_text().strip()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def data_snapshot(data_dir: Path) -> dict[str, object]:
    """What a failed command must leave untouched: database rows and the files on disk."""
    url = get_settings().resolved_database_url
    tables: dict[str, object] = {}
    if not url.startswith("sqlite") or (data_dir / "brandloop.db").exists():
        db = Database(url)
        with db.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA integrity_check").fetchone() == ("ok",)
            for name in sa.inspect(conn).get_table_names():
                tables[name] = tuple(conn.exec_driver_sql(f"SELECT count(*) FROM {name}").one())
        db.dispose()
    files = sorted(
        str(p.relative_to(data_dir))
        for p in data_dir.rglob("*")
        if p.is_file() and "chroma" not in p.parts and not p.name.endswith(("-wal", "-shm"))
    )
    return {"tables": tables, "files": files}


def test_generate_json_then_runs_show(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys,
        "generate",
        BRIEF,
        "--brand",
        str(BRANDS / "acme-coffee.yaml"),
        "--n",
        "2",
        "--size",
        "256x256",
        "--seed",
        str(seed),
        "--out",
        str(out_dir),
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] in {"succeeded", "partial"}
    assert {"run_id", "status", "images", "attempts", "cost_usd", "decisions"} <= doc.keys()
    image = doc["images"][0]
    assert {
        "path",
        "sha256",
        "model",
        "seed",
        "template",
        "prompt",
        "scores",
        "cost_usd",
    } <= image.keys()
    assert image["template"] == "brand-hero@1"
    png = Path(image["path"]).read_bytes()
    receipt = json.loads(read_png_text(png)[RECEIPT_KEY])
    assert receipt["run_id"] == doc["run_id"] and receipt["seed_requested"] == image["seed"]
    run_receipt = json.loads((out_dir / "receipt.json").read_text())
    assert run_receipt["run"]["run_id"] == doc["run_id"] and len(run_receipt["receipts"]) == len(
        doc["images"]
    )

    code, out, _ = run_cli(capsys, "runs", "show", doc["run_id"], "--json")
    trace = json.loads(out)
    assert code == 0 and trace["run"]["run_id"] == doc["run_id"]
    assert [e["node"] for e in trace["events"]][:3] == ["intake", "preflight", "recall"]
    assert trace["attempts"][0]["prompt"] and trace["attempts"][0]["seed_requested"] is not None

    code, out, _ = run_cli(capsys, "runs", "show", image["sha256"])
    assert code == 0 and doc["run_id"] in out and "Trace" in out

    code, out, _ = run_cli(capsys, "runs", "list", "--json")
    assert code == 0 and json.loads(out)[0]["run_id"] == doc["run_id"]


def test_brands_and_models(capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    code, out, _ = run_cli(capsys, "brands", "add", str(BRANDS / "nordlys-outdoor.yaml"))
    assert code == 0 and "Nordlys Outdoor" in out
    code, out, _ = run_cli(capsys, "brands", "list", "--json")
    assert [b["name"] for b in json.loads(out)] == ["Nordlys Outdoor"]
    code, out, err = run_cli(capsys, "models", "list", "--json")
    models = {m["id"]: m for m in json.loads(out)}
    assert models["procedural/draft"]["usable"] and models["procedural/studio"]["usable"]
    code, out, err = run_cli(capsys, "models", "list")
    assert "only the procedural models are active" in err


def test_refused_brief_exits_3(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    code, out, _ = run_cli(
        capsys,
        "generate",
        "cheap coffee deal",
        "--brand",
        str(BRANDS / "acme-coffee.yaml"),
        "--size",
        "128x128",
        "--out",
        str(tmp_path / "o"),
        "--json",
    )
    assert code == 3
    assert json.loads(out)["status"] == "refused"


def test_budget_exhausted_with_nothing_accepted_exits_4(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    code, out, _ = run_cli(
        capsys,
        "generate",
        BRIEF,
        "--brand",
        str(BRANDS / "acme-coffee.yaml"),
        "--size",
        "128x128",
        "--budget",
        "0.001",
        "--out",
        str(tmp_path / "o"),
        "--json",
    )
    assert code == 4 and json.loads(out)["status"] == "failed"


BAD_INPUTS = {
    "empty brief": (
        ["generate", "   ", "--brand", str(BRANDS / "acme-coffee.yaml")],
        "brief is empty",
    ),
    "100 KB brief": (
        ["generate", "x" * 100_000, "--brand", str(BRANDS / "acme-coffee.yaml")],
        "limit is",
    ),
    "unknown brand": (["generate", "a cup", "--brand", "no-such-brand"], "unknown brand"),
    "impossible size": (
        ["generate", "a cup", "--brand", str(BRANDS / "acme-coffee.yaml"), "--size", "99999x5"],
        "impossible",
    ),
    "malformed size": (
        ["generate", "a cup", "--brand", str(BRANDS / "acme-coffee.yaml"), "--size", "big"],
        "WIDTHxHEIGHT",
    ),
    "negative budget": (
        ["generate", "a cup", "--brand", str(BRANDS / "acme-coffee.yaml"), "--budget", "-1"],
        "budget",
    ),
    "unknown model": (
        ["generate", "a cup", "--brand", str(BRANDS / "acme-coffee.yaml"), "--model", "x/y"],
        "unknown model",
    ),
    "missing brand file": (["brands", "add", "examples/brands/missing.yaml"], "does not exist"),
    "unknown option": (["generate", "a cup", "--bogus"], "No such option"),
    "unknown run": (["runs", "show", "run_nope"], "unknown run"),
    # a blank name is not "none given": not the default template or model, not a campaign
    "blank template": (
        ["generate", "a cup", "--brand", str(BRANDS / "acme-coffee.yaml"), "--template", ""],
        "--template: is blank",
    ),
    "blank model": (
        ["generate", "a cup", "--brand", str(BRANDS / "acme-coffee.yaml"), "--model", " "],
        "--model: is blank",
    ),
    "blank campaign": (
        ["generate", "a cup", "--brand", str(BRANDS / "acme-coffee.yaml"), "--campaign", ""],
        "--campaign: is blank",
    ),
    # a campaign id that looks like another one is not another campaign (with its own budget)
    **{
        f"campaign id {shown}": (
            ["generate", "a cup", "--brand", str(BRANDS / "acme-coffee.yaml"), "--campaign", bad],
            f"--campaign: {bad!r} is not a campaign id",
        )
        for shown, bad in (("padded", "c9 "), ("upper-case", "C9"), ("newline", "c9\n"))
    },
    "campaign budget id upper-case": (
        ["campaign", "budget", "0.02", "--campaign-id", "C9"],
        "--campaign-id: 'C9' is not a campaign id",
    ),
    "campaign budget id padded": (
        ["campaign", "budget", "0.02", "--campaign-id", " c9"],
        "--campaign-id: ' c9' is not a campaign id",
    ),
    "campaign run id with a newline": (
        [
            "campaign",
            "run",
            str(ROOT / "examples" / "campaigns" / "acme-autumn.yaml"),
            "--campaign-id",
            "c9\n",
        ],
        "--campaign-id: 'c9\\n' is not a campaign id",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    case: str, capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path
) -> None:
    run_cli(capsys, "brands", "add", str(BRANDS / "acme-coffee.yaml"))
    run_cli(capsys, "models", "list")  # first use merges the shipped catalog into the registry
    before = data_snapshot(data_dir)
    argv, message = BAD_INPUTS[case]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("brandloop: error: "), err
    assert message in err
    assert data_snapshot(data_dir) == before


def test_malformed_brand_yaml_names_the_field(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, data_dir: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Bad\npalette:\n  - {hex: 'blue', role: primary}\n")
    code, _, err = run_cli(capsys, "brands", "add", str(bad))
    assert code == 2 and "palette.0.hex" in err and "'blue'" in err
    bad.write_text("name: [unclosed\n")
    code, _, err = run_cli(capsys, "brands", "add", str(bad))
    assert code == 2 and "not valid YAML" in err
    bad.write_text("name: Bad\npalette: []\n")
    code, _, err = run_cli(capsys, "generate", "a cup", "--brand", str(bad))
    assert code == 2 and "palette" in err


@pytest.mark.slow
def test_the_installed_console_script_runs_the_bundled_example(tmp_path: Path) -> None:
    env = {**os.environ, "BRANDLOOP_DATA_DIR": str(tmp_path / "data")}
    script = Path(sys.executable).with_name("brandloop")
    proc = subprocess.run(
        [
            str(script),
            "generate",
            BRIEF,
            "--brand",
            str(BRANDS / "acme-coffee.yaml"),
            "--n",
            "1",
            "--size",
            "256x256",
            "--seed",
            "3",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Accepted images" in proc.stdout and "Decisions" in proc.stdout
    assert list((tmp_path / "out").glob("*.png")) and (tmp_path / "out" / "receipt.json").is_file()
    assert ': valid - signed by "brandloop development signer"' in proc.stdout


def test_requests_that_differ_only_in_seed_get_new_images_paid_for(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    """The outside tester's steps (session 17): ``--seed S`` went draft then studio, its studio
    round rendering seed S+1; ``--seed S+1`` was then "1 of 1 accepted, 1 served from the cache
    at $0" with the same source image. docs/agent.md: an explicit seed always wins."""
    kit = (BRANDS / "acme-coffee.yaml").read_text()

    def brand(index: int) -> str:
        """A brand of its own for each seed tried: a run learns from the brand's history
        (accepted arms and seeds), so after one first-round accept every later try of the same
        brand was accepted at once too, and the search below never found a two-round seed."""
        name = f"Acme Coffee {index}"
        path = tmp_path / f"kit{index}.yaml"
        path.write_text(kit.replace("name: Acme Coffee", f"name: {name}", 1))
        code, _, err = run_cli(capsys, "brands", "add", str(path))
        assert code == 0, err
        return name

    def generate(
        name: str, value: int, out_dir: Path
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        code, out, err = run_cli(
            capsys, "generate", "a steaming cup", "--brand", name, "--seed", str(value),
            "--size", "256x256", "--out", str(out_dir), "--json",
        )  # fmt: skip
        assert code == 0, err
        return json.loads(out), json.loads((out_dir / "receipt.json").read_text())["receipts"]

    # the scenario needs a seed whose first round is not accepted (a studio round follows, at
    # S+1); the test's random seed is one about half the time: the next few even ones are tried
    for index, value in enumerate(range(seed, seed + 16, 2)):
        value %= 2**32
        name = brand(index)
        first, first_receipts = generate(name, value, tmp_path / f"first{value}")
        if [d["action"] for d in first["decisions"]].count("replan") == 1:
            break
    else:
        pytest.fail(f"no seed from {seed} on needed two rounds")
    neighbour = (value + 1) % 2**32
    second, second_receipts = generate(name, neighbour, tmp_path / "second")
    receipts = [first_receipts, second_receipts]
    assert second["cost_usd"] > 0 and "cache" not in second["reason"]
    assert not any(image["cache_hit"] for image in second["images"])
    assert [r["seed_requested"] for r in receipts[1]] == [neighbour]
    # provenance: the receipt names the seed the later round actually used
    assert [r["seed_requested"] for r in receipts[0]] == [i["seed"] for i in first["images"]]
    sources = [{r["source_sha256"] for r in found} for found in receipts]
    assert sources[0].isdisjoint(sources[1])
