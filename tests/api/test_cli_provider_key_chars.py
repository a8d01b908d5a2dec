"""A provider key that could never be sent in an HTTP header (a line break, a control or a
non-ASCII character, a blank at an end) is refused when settings load, as every other bad
setting is (docs/providers.md): exit 2, one line naming the variable, never the value, and
nothing stored. Before, such a key was taken, and every call then failed before anything was
sent yet was held as spent (``billing: unknown``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, data_snapshot, run_cli

KIT = str(BRANDS / "acme-coffee.yaml")
CANARY = "CANARYq7Xw2Lm9Pz4Rt8Vb"
BAD = {
    "CR LF at the end": ("BRANDLOOP_OPENAI_API_KEY", f"sk-proj-{CANARY}\r\n"),
    "LF inside": ("BRANDLOOP_OPENAI_API_KEY", f"sk-proj-{CANARY}\nX-Injected: 1"),
    "non-ASCII": ("BRANDLOOP_OPENAI_API_KEY", f"sk-proj-{CANARY}\u00e9"),
    "blank at the end": ("BRANDLOOP_OPENAI_API_KEY", f"sk-proj-{CANARY} "),
    "stability key with a tab": ("BRANDLOOP_STABILITY_API_KEY", f"sk-{CANARY}\tx"),
    "moderation key non-ASCII": ("BRANDLOOP_MODERATION_API_KEY", f"sk-{CANARY}\u2019"),
    "remote signer token with a line break": ("BRANDLOOP_C2PA_REMOTE_TOKEN", f"{CANARY}\r\n"),
}


@pytest.mark.databases("sqlite")
@pytest.mark.parametrize("case", sorted(BAD))
def test_a_key_no_header_can_carry_is_exit_2_naming_it_not_its_value(
    case: str,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, _, err = run_cli(capsys, "brands", "add", KIT)
    assert code == 0, err
    before = data_snapshot(data_dir)
    variable, value = BAD[case]
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    argv = ["generate", "a cup", "--brand", "Acme Coffee", "--model", "openai/gpt-image-1-mini"]
    code, out, err = run_cli(capsys, *argv, "--budget", "0.05", "--no-memory")
    get_settings.cache_clear()
    monkeypatch.delenv(variable)
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith(f"brandloop: error: {variable}: "), err
    assert err.count("\n") == 1, err
    assert CANARY not in err
    assert data_snapshot(data_dir) == before


def test_a_key_of_printable_ascii_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", f"sk-proj-{CANARY}_-.~")
    monkeypatch.setenv("BRANDLOOP_A1111_API_AUTH", "ana:p\u00e4ss word")  # sent as base64
    get_settings.cache_clear()
    try:
        loaded = get_settings()
    finally:
        get_settings.cache_clear()
    assert loaded.openai_api_key is not None
    assert loaded.openai_api_key.get_secret_value() == f"sk-proj-{CANARY}_-.~"
