"""A provider URL setting that holds a user name and password
(``BRANDLOOP_OPENAI_BASE_URL=http://bob:PASSWORD@host/v1``) is refused when settings load: the
CLI exits 2 with one line naming the variable and never the password, and nothing is sent
(docs/providers.md, "Configuration"). Before, httpx sent the userinfo as
``Authorization: Basic`` in place of the configured key, and a server echoing it put the
password into the run (tester26d, defect 3)."""

from __future__ import annotations

import pytest

from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, run_cli
from tests.fakes.provider_server import FakeImagesApp, serve

KEY = "sk-test-userinfo26-0123456789"
KIT = str(BRANDS / "acme-coffee.yaml")
PASSWORD = "UrlPassw0rd-xyz987"
MESSAGE = (
    "must not hold a user name or password (a provider's key goes in its own setting, e.g. "
    "BRANDLOOP_OPENAI_API_KEY or BRANDLOOP_A1111_API_AUTH)"
)
VARIABLES = (
    "BRANDLOOP_OPENAI_BASE_URL",
    "BRANDLOOP_STABILITY_BASE_URL",
    "BRANDLOOP_A1111_BASE_URL",
    "BRANDLOOP_COMFYUI_BASE_URL",
    "BRANDLOOP_MODERATION_BASE_URL",
    "BRANDLOOP_C2PA_REMOTE_URL",
    "BRANDLOOP_C2PA_TSA_URL",
    "BRANDLOOP_WRITER_BASE_URL",
)


@pytest.mark.databases("sqlite")
@pytest.mark.parametrize("variable", VARIABLES)
@pytest.mark.parametrize("userinfo", [f"bob:{PASSWORD}", "bob", f":{PASSWORD}"])
def test_userinfo_in_a_provider_url_is_refused_without_repeating_it(
    variable: str,
    userinfo: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
) -> None:
    """SQLite only: settings are read before any database is opened. (The database and the
    broker keep the password their URLs hold: ``tests/api/http/test_credentials_in_text.py``.)"""
    code, _, err = run_cli(capsys, "brands", "add", KIT)
    assert code == 0, err
    fake = FakeImagesApp(api_key=KEY)
    with serve(fake) as base_url:
        monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", KEY)
        monkeypatch.setenv("BRANDLOOP_OPENAI_BASE_URL", base_url)
        monkeypatch.setenv(variable, base_url.replace("http://", f"http://{userinfo}@"))
        if variable == "BRANDLOOP_WRITER_BASE_URL":
            monkeypatch.setenv("BRANDLOOP_WRITER_PROVIDER", "openai")
            monkeypatch.setenv("BRANDLOOP_WRITER_MODEL", "m")
        get_settings.cache_clear()
        try:
            code, out, err = run_cli(
                capsys, "generate", "a cup", "--brand", "Acme Coffee",
                "--model", "openai/gpt-image-1-mini", "--budget", "0.05", "--no-memory",
            )  # fmt: skip
        finally:
            get_settings.cache_clear()
    assert (code, out) == (2, ""), (code, out, err)
    assert err == f"brandloop: error: {variable}: {MESSAGE}\n", err
    assert PASSWORD not in err and "bob" not in err
    assert fake.requests == [], "a request was sent"
