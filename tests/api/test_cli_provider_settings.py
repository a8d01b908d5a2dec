"""Provider settings are bad input when malformed (README: a malformed ``BRANDLOOP_*`` setting is
exit 2 naming its variable, and ``brandloop serve`` refuses to start): per-provider limits out
of range, unknown limits or providers, base URLs that are not http(s) URLs with a host. And a
run whose only provider cannot be reached ends as providers unavailable (exit 5), never as a
budget stop with nothing spent (docs/providers.md)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, ROOT, data_snapshot, run_cli
from tests.fakes.provider_server import FakeImagesApp, serve

KIT = str(BRANDS / "acme-coffee.yaml")
KEY = "sk-test-provider-settings-0001"
BRANDLOOP = [sys.executable, "-c", "from brandloop.api.cli import main; main()"]

BAD = {
    "zero concurrency": (
        "BRANDLOOP_PROVIDER_LIMITS",
        '{"openai": {"concurrency": 0}}',
        "BRANDLOOP_PROVIDER_LIMITS: openai.concurrency must be a whole number at least 1 and "
        "at most 256, not 0",
    ),
    "fractional concurrency": (
        "BRANDLOOP_PROVIDER_LIMITS",
        '{"openai": {"concurrency": 2.5}}',
        "BRANDLOOP_PROVIDER_LIMITS: openai.concurrency must be a whole number",
    ),
    "unknown limit": (
        "BRANDLOOP_PROVIDER_LIMITS",
        '{"openai": {"bogus": 1}}',
        "BRANDLOOP_PROVIDER_LIMITS: openai: unknown limit 'bogus' (known: concurrency, ",
    ),
    "negative rate": (
        "BRANDLOOP_PROVIDER_LIMITS",
        '{"openai": {"requests_per_minute": -5}}',
        "BRANDLOOP_PROVIDER_LIMITS: openai.requests_per_minute must be a number at least 0, not -5",
    ),
    "negative burst": (
        "BRANDLOOP_PROVIDER_LIMITS",
        '{"openai": {"burst": -3}}',
        "BRANDLOOP_PROVIDER_LIMITS: openai.burst must be a whole number at least 1",
    ),
    "zero deadline": (
        "BRANDLOOP_PROVIDER_LIMITS",
        '{"stability": {"deadline_s": 0}}',
        "BRANDLOOP_PROVIDER_LIMITS: stability.deadline_s must be a number more than 0, not 0",
    ),
    "unknown provider": (
        "BRANDLOOP_PROVIDER_LIMITS",
        '{"nosuch": {"concurrency": 2}}',
        "BRANDLOOP_PROVIDER_LIMITS: unknown provider 'nosuch' (limits apply to openai, ",
    ),
    "base URL without a scheme": (
        "BRANDLOOP_OPENAI_BASE_URL",
        "127.0.0.1:18441/v1",
        "BRANDLOOP_OPENAI_BASE_URL: must be an http:// or https:// URL with a host (it has no "
        "scheme; e.g. http://127.0.0.1:8080/v1)",
    ),
    "base URL not a URL": (
        "BRANDLOOP_OPENAI_BASE_URL",
        "notaurl",
        "BRANDLOOP_OPENAI_BASE_URL: must be an http:// or https:// URL with a host (it has no "
        "scheme",
    ),
    "base URL with another scheme": (
        "BRANDLOOP_STABILITY_BASE_URL",
        "ftp://stability.example",
        "BRANDLOOP_STABILITY_BASE_URL: must be an http:// or https:// URL with a host (it has "
        "another scheme",
    ),
    "base URL with a bad port": (
        "BRANDLOOP_COMFYUI_BASE_URL",
        "http://gpu-box:eighty/",
        "BRANDLOOP_COMFYUI_BASE_URL: is not a URL: its port is not a number from 0 to 65535",
    ),
    "moderation base URL without a host": (
        "BRANDLOOP_MODERATION_BASE_URL",
        "https:///v1",
        "BRANDLOOP_MODERATION_BASE_URL: must be an http:// or https:// URL with a host (it has "
        "none)",
    ),
    "remote signer URL with another scheme": (
        "BRANDLOOP_C2PA_REMOTE_URL",
        "ftp://signer.example/sign",
        "BRANDLOOP_C2PA_REMOTE_URL: must be an http:// or https:// URL with a host (it has "
        "another scheme",
    ),
    "time-stamping URL without a scheme": (
        "BRANDLOOP_C2PA_TSA_URL",
        "tsa.example/rfc3161",
        "BRANDLOOP_C2PA_TSA_URL: must be an http:// or https:// URL with a host (it has no scheme",
    ),
}


@pytest.mark.databases("sqlite")
@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_provider_setting_is_exit_2_naming_it_and_stores_nothing(
    case: str,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQLite only: settings are read before any database is opened."""
    code, _, err = run_cli(capsys, "brands", "add", KIT)
    assert code == 0, err
    before = data_snapshot(data_dir)
    variable, value, message = BAD[case]
    monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", KEY)
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    argv = ["generate", "a cup", "--brand", "Acme Coffee", "--model", "openai/gpt-image-1-mini"]
    code, out, err = run_cli(capsys, *argv, "--budget", "0.006", "--no-memory")
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith(f"brandloop: error: {message}") and err.count("\n") == 1, err
    get_settings.cache_clear()
    monkeypatch.delenv(variable)
    assert data_snapshot(data_dir) == before


#: A malformed base URL holding a credential: in its userinfo, its query or as a password.
SECRET = "t25dSecretValue9876"
LEAKY = {
    "userinfo": ("BRANDLOOP_OPENAI_BASE_URL", f"ftp://user:sk-test-{SECRET}@gateway.example/v1"),
    "query": ("BRANDLOOP_OPENAI_BASE_URL", f"gateway.example/v1?api_key=sk-test-{SECRET}"),
    "a1111 password": ("BRANDLOOP_A1111_BASE_URL", f"ftp://admin:{SECRET}@127.0.0.1:7860"),
    "bad port": ("BRANDLOOP_STABILITY_BASE_URL", f"http://admin:{SECRET}@gpu-box:{SECRET}/"),
    "writer": ("BRANDLOOP_WRITER_BASE_URL", f"llm.example/v1?token={SECRET}"),
    "moderation": ("BRANDLOOP_MODERATION_BASE_URL", f"https://u:{SECRET}@/v1"),
    "remote signer": ("BRANDLOOP_C2PA_REMOTE_URL", f"ftp://u:{SECRET}@signer.example/sign"),
    "time-stamping": ("BRANDLOOP_C2PA_TSA_URL", f"tsa.example/?key={SECRET}"),
}  # fmt: skip


@pytest.mark.databases("sqlite")
@pytest.mark.parametrize("case", sorted(LEAKY))
def test_a_malformed_url_setting_is_named_without_repeating_its_credentials(
    case: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a bad ``BRANDLOOP_DATABASE_URL`` (README): the line names the variable and what is
    wrong, never the URL, its userinfo, its password or its query values."""
    variable, value = LEAKY[case]
    monkeypatch.setenv(variable, value)
    if variable == "BRANDLOOP_WRITER_BASE_URL":
        monkeypatch.setenv("BRANDLOOP_WRITER_PROVIDER", "openai")
        monkeypatch.setenv("BRANDLOOP_WRITER_MODEL", "m")
    get_settings.cache_clear()
    try:
        code, out, err = run_cli(capsys, "models", "list")
    finally:
        get_settings.cache_clear()
    assert (code, out) == (2, ""), err
    assert err.startswith(f"brandloop: error: {variable}: ") and err.count("\n") == 1, err
    for part in (SECRET, "admin", "user", "api_key", "token", "gateway", "signer.example"):
        assert part not in err, err


def test_good_provider_settings_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "BRANDLOOP_PROVIDER_LIMITS",
        '{"openai": {"concurrency": 8, "requests_per_minute": 50, "burst": 5}, '
        '"procedural": {"max_attempts": 1, "backoff_initial_s": 0}}',
    )
    monkeypatch.setenv("BRANDLOOP_OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
    monkeypatch.setenv("BRANDLOOP_A1111_BASE_URL", "https://gpu-box.internal:7860")
    get_settings.cache_clear()
    try:
        loaded = get_settings()
    finally:
        get_settings.cache_clear()
    assert loaded.provider_limits["openai"]["concurrency"] == 8
    assert loaded.a1111_base_url == "https://gpu-box.internal:7860"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.databases("sqlite")
@pytest.mark.parametrize("case", ["zero concurrency", "base URL without a scheme"])
def test_serve_refuses_to_start_on_a_bad_provider_setting(case: str, tmp_path: Path) -> None:
    variable, value, message = BAD[case]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANDLOOP_")}
    env.update(
        PYTHONPATH=str(ROOT),
        HF_HUB_OFFLINE="1",
        BRANDLOOP_DATA_DIR=str(tmp_path / "data"),
        BRANDLOOP_OPENAI_API_KEY=KEY,
        **{variable: value},
    )
    done = subprocess.run(
        [*BRANDLOOP, "serve", "--port", str(_free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # a server that started would not return: the test fails here
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith(f"brandloop: error: {message}"), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_an_unreachable_provider_is_exit_5_not_a_budget_stop_with_nothing_spent(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A budget that pays for the model's cheapest setting (low, $0.005) but not its flat
    catalog price ($0.011): the calls fail unbilled, so the run ends as providers unavailable
    (it was stopped as "budget spent ($0.000 of $0.006)", exit 4)."""
    port = _free_port()  # nothing listens there: every connection is refused
    monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("BRANDLOOP_OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("BRANDLOOP_PROVIDER_BACKOFF_INITIAL_S", "0.001")
    monkeypatch.setenv("BRANDLOOP_PROVIDER_BACKOFF_MAX_S", "0.001")
    get_settings.cache_clear()
    try:
        code, out, err = run_cli(
            capsys, "generate", "a cup", "--brand", KIT, "--model", "openai/gpt-image-1-mini",
            "--budget", "0.006", "--no-memory", "--json", "--out", str(tmp_path / "out"),
        )  # fmt: skip
    finally:
        get_settings.cache_clear()
    assert code == 5, (out, err)
    result = json.loads(out)
    assert result["stop_cause"] == "providers_unavailable", result["reason"]
    assert result["reason"] == "no usable provider: openai: unreachable ×4"
    assert result["cost_usd"] == 0


@pytest.mark.databases("sqlite")
@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("openai,,", "'' is not a provider name"),
        (",openai", "'' is not a provider name"),
        ("openai, ,procedural", "'' is not a provider name"),
        ("  ", "providers is empty"),
    ],
)
def test_cli_refuses_an_empty_provider_name_as_the_api_does(
    capsys: pytest.CaptureFixture[str], settings: Settings, option: str, message: str
) -> None:
    code, out, err = run_cli(capsys, "generate", "a cup", "--brand", KIT, "--providers", option)
    assert code == 2 and out == "", (code, out, err)
    assert message in err and err.count("\n") == 1, err


@pytest.mark.databases("sqlite")
def test_cli_takes_a_provider_name_with_spaces_around_it_as_the_api_does(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    code, out, err = run_cli(
        capsys, "generate", "a cup", "--brand", KIT, "--providers", " procedural ", "--size",
        "256x256", "--json", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code in (0, 4), err
    assert {i["model"].split("/")[0] for i in json.loads(out)["images"]} <= {"procedural"}


def test_the_exit_5_reason_says_breaker_open_not_an_error_class(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """docs/agent.md: `no usable provider: openai: 503 ×4, breaker open`. Calls the open breaker
    held back are not listed as `ProviderUnavailableError ×N`."""
    fake = FakeImagesApp(api_key=KEY)
    fake.faults.extend(["503"] * 40)
    with serve(fake) as base_url:
        monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", KEY)
        monkeypatch.setenv("BRANDLOOP_OPENAI_BASE_URL", base_url)
        # round one: 4 tries on one model, 503 each; round two, on the next model: the 5th 503
        # opens the breaker, which holds back the retry (ProviderUnavailableError)
        monkeypatch.setenv("BRANDLOOP_PROVIDER_MAX_ATTEMPTS", "4")
        monkeypatch.setenv("BRANDLOOP_PROVIDER_BACKOFF_INITIAL_S", "0.001")
        monkeypatch.setenv("BRANDLOOP_PROVIDER_BACKOFF_MAX_S", "0.001")
        monkeypatch.setenv("BRANDLOOP_PROVIDER_BREAKER_FAILURES", "5")
        get_settings.cache_clear()
        try:
            code, out, err = run_cli(
                capsys, "generate", "a teal coffee cup", "--brand", KIT, "--size", "1024x1024",
                "--json", "--out", str(tmp_path / "out"),
            )  # fmt: skip
        finally:
            get_settings.cache_clear()
    assert code == 5, (out, err)
    reason = json.loads(out)["reason"]
    assert reason.startswith("no usable provider: openai: 503 ×"), reason
    assert reason.endswith(", breaker open"), reason
    assert "Error" not in reason, reason
