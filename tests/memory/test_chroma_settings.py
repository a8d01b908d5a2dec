"""``BRANDLOOP_CHROMA_HOST`` and ``BRANDLOOP_CHROMA_PORT`` are refused at load when malformed
(exit 2 naming the variable), never repeating a credential the host holds. An outside tester
set the host to ``admin:s3cretpw@127.0.0.1``: every memory command said "the Chroma server at
admin:s3cretpw@127.0.0.1:18799 cannot be reached" (exit 7), and a run put the password in its
recall decision, its receipt, the registry and the log. Ports -1, 0 and 70000 and a host with
a port were "cannot be reached" too."""

from __future__ import annotations

import pytest

from brandloop.errors import BadInputError
from brandloop.settings import Settings, get_settings, load_settings
from tests.api.test_cli import run_cli

SECRET = "s3cretpw9876"
BAD = {
    "userinfo": ("BRANDLOOP_CHROMA_HOST", f"admin:{SECRET}@127.0.0.1"),
    "query": ("BRANDLOOP_CHROMA_HOST", f"127.0.0.1/x?token={SECRET}"),
    "url": ("BRANDLOOP_CHROMA_HOST", f"http://chroma.internal/?key={SECRET}"),
    "host and port": ("BRANDLOOP_CHROMA_HOST", "127.0.0.1:18799"),
    "bare ipv6": ("BRANDLOOP_CHROMA_HOST", "::1"),
    "space": ("BRANDLOOP_CHROMA_HOST", "chroma internal"),
    "negative port": ("BRANDLOOP_CHROMA_PORT", "-1"),
    "port 0": ("BRANDLOOP_CHROMA_PORT", "0"),
    "port past 65535": ("BRANDLOOP_CHROMA_PORT", "70000"),
}  # fmt: skip


@pytest.mark.databases("sqlite")
@pytest.mark.parametrize("case", sorted(BAD))
def test_a_malformed_chroma_setting_is_exit_2_naming_it_and_no_credential(
    case: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    variable, value = BAD[case]
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        code, out, err = run_cli(capsys, "memory", "search", "cup", "--brand", "Acme Coffee")
    finally:
        get_settings.cache_clear()
    assert (code, out) == (2, ""), err
    assert err.startswith(f"brandloop: error: {variable}: ") and err.count("\n") == 1, err
    for part in (SECRET, "admin", "token", "key=", "cannot be reached"):
        assert part not in err, err


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "chroma.internal", "chroma_db", "[::1]", "CHROMA-1"]
)
def test_a_bare_host_and_a_port_in_range_are_taken(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRANDLOOP_CHROMA_HOST", host)
    monkeypatch.setenv("BRANDLOOP_CHROMA_PORT", "65535")
    settings = load_settings(Settings)
    assert (settings.chroma_host, settings.chroma_port) == (host, 65535)
    monkeypatch.setenv("BRANDLOOP_CHROMA_HOST", "")  # unset: the on-disk store
    assert load_settings(Settings).chroma_host is None
    monkeypatch.setenv("BRANDLOOP_CHROMA_PORT", "0")
    with pytest.raises(BadInputError, match="BRANDLOOP_CHROMA_PORT"):
        load_settings(Settings)
