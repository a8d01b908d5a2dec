"""A call billed above its reservation (a provider pricing by the usage it reports) says so in
the run's decisions, with the request's budget it passed: an outside tester's run cost $0.032
against a $0.011 budget, `succeeded`, exit 0, with not a word. The provider is the fake
OpenAI-compatible server (the outside world), its reported usage priced by the catalog's
token prices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, run_cli
from tests.fakes.provider_server import FakeImagesApp, serve

KEY = "sk-test-billed-above-0123456789"


def test_a_call_billed_above_its_reservation_is_a_decision_naming_the_budget(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = FakeImagesApp(api_key=KEY, image_side=256, render=True)
    with serve(app) as base_url:
        monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", KEY)
        monkeypatch.setenv("BRANDLOOP_OPENAI_BASE_URL", base_url)
        get_settings.cache_clear()
        code, out, err = run_cli(
            capsys, "generate", "a steaming cup", "--brand", str(BRANDS / "acme-coffee.yaml"),
            "--model", "openai/gpt-image-1-mini", "--seed", "4", "--no-memory",
            "--budget", "0.006", "--out", str(tmp_path / "o"), "--json",
        )  # fmt: skip
    get_settings.cache_clear()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["cost_usd"] > 0.006  # the fake's usage, priced: more than the reservation
    (above,) = [d for d in doc["decisions"] if d["action"] == "billed_above_reservation"]
    assert above["reason"].startswith("the provider billed $0.00")
    assert "reserved at $0.005" in above["reason"]
    assert "the request's budget $0.006 is passed by $" in above["reason"], above["reason"]
    assert above["signals"]["charged_usd"] == pytest.approx(doc["cost_usd"])
