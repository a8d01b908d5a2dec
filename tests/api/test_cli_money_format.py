"""Money prints exactly wherever people read it: a catalog price of $0.0125 is $0.0125 in
``models list``, in the run's reason and decisions, in ``runs list`` and ``runs show`` - never
rounded to $0.013 (one formatter, ``brandloop.registry.types.usd``, the campaign CLI's); JSON
keeps numbers. Through the CLI, on both databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from brandloop.policies.catalog import CATALOG_PATH
from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, run_cli

PRICE = 0.0125


def _catalog(path: Path) -> Path:
    """The shipped catalog with procedural/draft at $0.0125 an image."""
    data = yaml.safe_load(CATALOG_PATH.read_text())
    for model in data["models"]:
        if model["id"] == "procedural/draft":
            model["price_per_image_usd"] = PRICE
    path.write_text(yaml.safe_dump(data))
    return path


def _ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    return out


def test_a_four_decimal_amount_prints_exactly_in_tables_and_reasons(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    seed: int,
) -> None:
    monkeypatch.setenv("BRANDLOOP_CATALOG_PATH", str(_catalog(tmp_path / "catalog.yaml")))
    get_settings.cache_clear()
    listing = _ok(capsys, "models", "list", "--wide")
    (line,) = [row for row in listing.splitlines() if "procedural/draft" in row]
    assert "$0.0125" in line and "$0.013" not in line, listing

    # two images wanted, $0.02 to spend: one draft image is all it pays for
    code, out, err = run_cli(
        capsys, "generate", "a cup", "--brand", str(BRANDS / "acme-coffee.yaml"),
        "--size", "128x128", "--seed", str(seed % 2**32), "--model", "procedural/draft",
        "--n", "2", "--budget", "0.02", "--no-memory", "--out", str(tmp_path / "out"),
        "--json",
    )  # fmt: skip
    assert code in (0, 4), err
    result: dict[str, Any] = json.loads(out)
    assert result["cost_usd"] == PRICE  # JSON keeps the number
    reasons = [result["reason"], *(d["reason"] for d in result["decisions"])]
    assert any("$0.0125" in reason for reason in reasons), reasons
    assert not any("$0.013" in reason for reason in reasons), reasons

    runs = _ok(capsys, "runs", "list", "--wide")
    (row,) = [row for row in runs.splitlines() if result["run_id"][:12] in row]
    assert "$0.0125" in row and "$0.013" not in row, runs
    shown = _ok(capsys, "runs", "show", result["run_id"])
    assert "$0.0125" in shown and "$0.013" not in shown, shown
