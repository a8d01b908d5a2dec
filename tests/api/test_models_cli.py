"""``brandloop models list`` shows the catalog's fields and why a model is not usable here."""

from __future__ import annotations

import json

import pytest

from brandloop.api.cli import main
from brandloop.settings import Settings, get_settings


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
