"""``brandloop models list`` shows the catalog's fields and why a model is not usable here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from brandloop.api.cli import main
from brandloop.policies.catalog import CATALOG_PATH
from brandloop.settings import Settings, get_settings

ACME = Path(__file__).resolve().parents[2] / "examples" / "brands" / "acme-coffee.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def test_models_list_json_has_catalog_fields_and_reasons(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    code, out, _ = run(capsys, "models", "list", "--json")
    assert code == 0
    models = {m["id"]: m for m in json.loads(out)}
    gpt = models["openai/gpt-image-1"]
    assert gpt["sizes"] == ["1024x1024", "1536x1024", "1024x1536"]
    assert gpt["prices"]["1536x1024/high"] == 0.25 and gpt["supports_seed"] is False
    assert gpt["licence"] and gpt["quality_baseline"] == 0.85
    assert gpt["usable"] is False and gpt["unusable_reason"] == "openai not configured"
    assert models["openai/dall-e-3"]["unusable_reason"] == "retired"
    assert models["stability/core"]["aspect_ratios"][0] == "1:1"
    assert models["procedural/draft"]["usable"] is True


def test_credentials_make_a_provider_usable(
    capsys: pytest.CaptureFixture[str], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", "sk-test-models-list-0001")
    get_settings.cache_clear()
    code, out, err = run(capsys, "models", "list")
    assert code == 0 and "openai/gpt-image-1" in out
    assert "only the procedural models are active" not in err
    code, out, _ = run(capsys, "models", "list", "--json")
    models = {m["id"]: m for m in json.loads(out)}
    assert models["openai/gpt-image-1"]["usable"] is True
    assert models["openai/dall-e-3"]["usable"] is False  # retired stays unusable
    assert "sk-test-models-list-0001" not in out


def test_without_credentials_the_cli_says_only_procedural_is_active(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    code, _, err = run(capsys, "models", "list")
    assert code == 0 and "only the procedural models are active" in err
    code, _, err = run(
        capsys, "generate", "a cup", "--brand", "Nobody", "--model", "openai/gpt-image-1"
    )
    assert code == 2 and "not configured" in err


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_key_leaves_the_provider_off_and_the_offline_default_on(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    blank: str,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", blank)
    get_settings.cache_clear()
    code, out, _ = run(capsys, "models", "list", "--json")
    models = {m["id"]: m for m in json.loads(out)}
    assert code == 0 and models["openai/gpt-image-1"]["usable"] is False
    assert models["procedural/studio"]["usable"] is True
    assert run(capsys, "brands", "add", str(ACME))[0] == 0
    code, out, err = run(
        capsys, "generate", "a cup", "--brand", "Acme Coffee", "--size", "64x64", "--seed", "1",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, err


@pytest.mark.parametrize("placeholder", ["changeme", "sk-...", " YOUR-KEY-HERE "])
def test_a_placeholder_key_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    placeholder: str,
) -> None:
    monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", placeholder)
    get_settings.cache_clear()
    code, _, err = run(capsys, "models", "list")
    assert code == 2 and "placeholder" in err and len(err.strip().splitlines()) == 1
    assert placeholder.strip() not in err


def expensive_catalog(path: Path) -> Path:
    """The shipped catalog with procedural/draft at $0.50 an image."""
    data = yaml.safe_load(CATALOG_PATH.read_text())
    for model in data["models"]:
        if model["id"] == "procedural/draft":
            model["price_per_image_usd"] = 0.5
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("where", ["setting", "data dir"])
def test_models_list_shows_the_deployment_catalog_and_the_ledger_charges_its_prices(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    where: str,
) -> None:
    if where == "setting":
        monkeypatch.setenv(
            "BRANDLOOP_CATALOG_PATH", str(expensive_catalog(tmp_path / "catalog.yaml"))
        )
        get_settings.cache_clear()
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        expensive_catalog(settings.data_dir / "catalog.yaml")
    code, out, _ = run(capsys, "models", "list", "--json")
    models = {m["id"]: m for m in json.loads(out)}
    assert code == 0 and models["procedural/draft"]["price_per_image_usd"] == 0.5
    assert run(capsys, "brands", "add", str(ACME))[0] == 0
    # listing again must not write the shipped prices back over the deployment's
    run(capsys, "models", "list", "--json")
    code, out, err = run(
        capsys, "generate", "a cup", "--brand", "Acme Coffee", "--size", "64x64", "--seed", "1",
        "--model", "procedural/draft", "--budget", "2", "--json",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code in (0, 4), err
    result = json.loads(out)
    assert result["cost_usd"] > 0 and result["cost_usd"] % 0.5 == pytest.approx(0.0, abs=1e-9)
