"""``brandloop verify`` of a copy whose credentials were stripped, when two runs delivered the
same pixels: the procedural renderer draws from the seed and the brand's colours, so two briefs
given one seed make the same raw image. Both runs are candidates; verify names each (most
recent first, ``matches`` in ``--json``, ``match`` the first of them) rather than whichever
run first stored the raw bytes - by sha256 and by perceptual hash alike (on both
databases)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from brandloop.settings import Settings
from tests.api.test_cli import BRANDS, run_cli
from tests.tools.credentials.conftest import png_chunks, png_from_chunks, strip_manifest

METADATA = (b"caBX", b"iTXt")  # the manifest, and the receipt and XMP chunks


def generate(
    capsys: pytest.CaptureFixture[str], out: Path, brief: str, seed: int
) -> dict[str, Any]:
    code, _, err = run_cli(
        capsys,
        "generate",
        brief,
        "--brand",
        str(BRANDS / "acme-coffee.yaml"),
        "--size",
        "256x256",
        "--seed",
        str(seed),
        "--out",
        str(out),
    )
    assert code == 0, err
    document: dict[str, Any] = json.loads((out / "receipt.json").read_text())
    return document


def test_a_stripped_copy_of_pixels_two_runs_delivered_names_both_runs(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    first = generate(capsys, tmp_path / "first", "a cup of coffee", 5)
    seed = first["receipts"][0]["seed_requested"]
    second = generate(
        capsys, tmp_path / "second", "a tall glass of iced coffee on a marble counter", seed
    )
    raw = first["receipts"][0]["source_sha256"]
    assert second["receipts"][0]["source_sha256"] == raw, "the renderer drew the same pixels"
    runs = [second["run"]["run_id"], first["run"]["run_id"]]  # most recent first
    signed = next((tmp_path / "second").glob("*.png")).read_bytes()

    bare = tmp_path / "bare.png"
    bare.write_bytes(png_from_chunks([c for c in png_chunks(signed) if c[0] not in METADATA]))
    code, out, _ = run_cli(capsys, "verify", str(bare))
    assert code == 6
    assert (
        f"{bare}: absent - credentials removed; matches 2 runs by sha256, most recent first: "
        f"{runs[0]} (template brand-hero@1), {runs[1]} (template brand-hero@1)"
    ) in out, out
    code, out, _ = run_cli(capsys, "verify", str(bare), "--json")
    assert code == 6
    report = json.loads(out)[0]
    assert [m["run_id"] for m in report["matches"]] == runs
    assert {m["matched_by"] for m in report["matches"]} == {"sha256"}
    assert report["match"] == report["matches"][0] and report["run_id"] == runs[0]

    unsigned = tmp_path / "unsigned.png"  # the receipt chunk left: only the pixels match
    unsigned.write_bytes(strip_manifest(signed))
    code, out, _ = run_cli(capsys, "verify", str(unsigned), "--json")
    assert code == 6
    report = json.loads(out)[0]
    assert [(m["run_id"], m["distance"]) for m in report["matches"]] == [(r, 0) for r in runs]
    assert report["match"]["matched_by"] == "perceptual_hash"
    assert "matches 2 runs by perceptual hash, nearest first: " in report["summary"]
    assert f"{runs[0]} (template brand-hero@1, 0/64 bits apart)" in report["summary"]


def test_a_stripped_copy_one_run_delivered_still_names_that_run_alone(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    only = generate(capsys, tmp_path / "only", "a cup of coffee", 5)
    signed = next((tmp_path / "only").glob("*.png")).read_bytes()
    bare = tmp_path / "bare.png"
    bare.write_bytes(png_from_chunks([c for c in png_chunks(signed) if c[0] not in METADATA]))
    code, out, _ = run_cli(capsys, "verify", str(bare), "--json")
    assert code == 6
    report = json.loads(out)[0]
    assert [m["run_id"] for m in report["matches"]] == [only["run"]["run_id"]]
    assert report["summary"].endswith(
        f"matches run {only['run']['run_id']}, template brand-hero@1 by sha256"
    )
