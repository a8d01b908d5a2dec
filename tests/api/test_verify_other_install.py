"""A file signed by another brandloop install passes every C2PA check - its signature, its hard
binding, its receipt assertion - but names a run this registry never made. ``brandloop verify``
with a registry says ``unverified`` (exit 6, as for any file not ``valid``), never ``valid``:
this registry cannot vouch for the run; the install that made it still says ``valid`` (on both
databases)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, run_cli


def test_a_file_signed_by_another_install_is_unverified_not_valid(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    another_database_url: str | None,
) -> None:
    out_dir = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "generate", "a cup of coffee", "--brand", str(BRANDS / "acme-coffee.yaml"),
        "--size", "256x256", "--seed", "5", "--out", str(out_dir),
    )  # fmt: skip
    assert code == 0, err
    signed = next(out_dir.glob("*.png"))
    run_id = json.loads((out_dir / "receipt.json").read_text())["run"]["run_id"]
    code, out, _ = run_cli(capsys, "verify", str(signed))
    assert code == 0 and f"{signed}: valid - " in out, out

    monkeypatch.setenv("BRANDLOOP_DATA_DIR", str(tmp_path / "other"))  # another install
    if another_database_url is not None:
        monkeypatch.setenv("BRANDLOOP_DATABASE_URL", another_database_url)
    get_settings.cache_clear()
    code, out, _ = run_cli(capsys, "verify", str(signed))
    assert code == 6, out
    assert out.startswith(
        f'{signed}: unverified - signed by "brandloop development signer" (brandloop '
        f"development CA: UNTRUSTED); run {run_id}, template brand-hero@1; run not in this "
        "registry, which cannot vouch for it"
    ), out
    code, out, _ = run_cli(capsys, "verify", str(signed), "--json")
    assert code == 6
    report = json.loads(out)[0]
    assert (report["status"], report["receipt"], report["registry_bytes"]) == (
        "unverified",
        "not_in_registry",
        "not_checked",
    )
    assert (report["signature"], report["hard_binding"], report["problems"]) == ("ok", "ok", [])
