"""``brandloop gc`` removes stray files: images in the artifact store that no row names (their
process killed inside the settlement transaction: file written, row rolled back) and temp
files of a write cut short, once older than ``BRANDLOOP_STRAY_GRACE_SECONDS``. A fresh stray
(a call being settled right now) stays, and so does every file a row names: accepted images
and their receipts, the candidates of a run waiting for review, a file only an attempt and a
cache entry still name. Through ``brandloop`` itself, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from brandloop.artifacts import ArtifactStore
from brandloop.registry.db import Database
from brandloop.registry.models import ArtifactRow, AttemptRow
from brandloop.registry.models_agent import CacheEntryRow
from brandloop.settings import Settings, get_settings
from tests.agent.helpers import AUTUMN
from tests.api.test_cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
ACME = str(ROOT / "examples" / "brands" / "acme-coffee.yaml")
HOUR = 3600.0


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _files(store: ArtifactStore) -> set[Path]:
    return {p for p in store.root.rglob("*") if p.is_file()}


def _generate(capsys: pytest.CaptureFixture[str], tmp_path: Path, seed: int) -> dict[str, object]:
    code, out, err = run_cli(
        capsys, "generate", AUTUMN, "--brand", ACME, "--n", "2", "--size", "128x128",
        "--seed", str(seed), "--no-memory", "--json", "--out", str(tmp_path / f"out-{seed}"),
    )  # fmt: skip
    assert code == 0, err
    result: dict[str, object] = json.loads(out)
    return result


def _gc(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    code, out, err = run_cli(capsys, "gc", *argv, "--json")
    assert code == 0, err
    report: dict[str, object] = json.loads(out)
    return report


def test_gc_removes_old_stray_files_and_keeps_fresh_ones_and_every_file_a_row_names(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
) -> None:
    store = ArtifactStore(settings.artifacts_dir)
    delivered = _generate(capsys, tmp_path, seed % 2**31)  # accepted images, receipts, cache
    assert delivered["status"] in {"succeeded", "partial"}, delivered
    policy = tmp_path / "agent.yaml"
    policy.write_text("brand_review: {acme-coffee: {mode: always}}\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    get_settings.cache_clear()
    waiting = _generate(capsys, tmp_path, seed % 2**31 + 1)  # a pending review's candidates
    assert waiting["status"] == "awaiting_review", waiting
    with db.session() as session:  # a candidate whose copy is gone; its attempt and cache
        # entry still name the file
        orphan = session.scalars(
            sa.select(CacheEntryRow.artifact_sha256)
            .join(AttemptRow, AttemptRow.artifact_sha256 == CacheEntryRow.artifact_sha256)
            .limit(1)
        ).one()
        session.execute(sa.delete(ArtifactRow).where(ArtifactRow.sha256 == orphan))
    named = _files(store)
    assert named and store.exists(orphan)
    for path in named:  # old enough to go, were it not for the rows naming them
        _age(path, 2 * HOUR)

    # what a SIGKILL inside the settlement transaction leaves: the file, no row
    old_sha, old_stray = store.put(_png((1, 2, 3)))
    _age(old_stray, 2 * HOUR)
    cut_short = old_stray.parent / ".tmp-abc123.png"  # a write killed before its rename
    cut_short.write_bytes(b"\x89PNG partial")
    _age(cut_short, 2 * HOUR)
    _, fresh_stray = store.put(_png((4, 5, 6)))  # a call being settled right now
    _age(fresh_stray, 0.25 * HOUR)
    strays_bytes = old_stray.stat().st_size + cut_short.stat().st_size

    one_tenant = _gc(capsys, "--tenant", "default")  # strays are no tenant's: left alone
    dry = _gc(capsys, "--dry-run")
    assert old_stray.exists() and cut_short.exists()
    real = _gc(capsys)
    assert not old_stray.exists() and not cut_short.exists() and not store.exists(old_sha)
    assert fresh_stray.exists()
    assert named <= _files(store), sorted(str(p) for p in named - _files(store))
    assert one_tenant["stray_grace_seconds"] is None and one_tenant["strays"] == 0
    assert (dry["strays"], dry["stray_bytes"], dry["stray_grace_seconds"]) == (
        2, strays_bytes, HOUR
    )  # fmt: skip
    assert (real["strays"], real["stray_bytes"], real["dry_run"]) == (2, strays_bytes, False)
    assert real["artifacts"] == 0  # no retention age: no recorded image goes
    assert _gc(capsys)["strays"] == 0

    code, out, err = run_cli(capsys, "gc")
    assert code == 0, err
    assert "deleted 0 stray file(s) (0.0 MB): no row names them, older than 3600 s" in out

    monkeypatch.setenv("BRANDLOOP_STRAY_GRACE_SECONDS", "600")  # a shorter grace
    get_settings.cache_clear()
    shorter = _gc(capsys)
    assert (shorter["strays"], shorter["stray_grace_seconds"]) == (1, 600), shorter
    assert not fresh_stray.exists() and named <= _files(store)


@pytest.mark.parametrize("grace", ["0", "59", "nan", "soon"])
def test_a_stray_grace_under_a_minute_is_refused(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    grace: str,
) -> None:
    monkeypatch.setenv("BRANDLOOP_STRAY_GRACE_SECONDS", grace)
    get_settings.cache_clear()
    code, _out, err = run_cli(capsys, "gc")
    assert code == 2 and err.count("\n") == 1, err
    assert "BRANDLOOP_STRAY_GRACE_SECONDS" in err, err
