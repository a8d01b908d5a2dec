"""What is redacted from a provider's answers is the set the input check refuses, one source
(``brandloop.settings``): the keys, the A1111 auth and its password, and the password and
key-named query values of every ``*_URL`` setting, as written and decoded; and a credential is
found as base64 carries it too (a ``Basic`` header, an echo encoded), at any alignment
(tester26d, defect 1)."""

from __future__ import annotations

import base64

import pytest
from pydantic import SecretStr

from brandloop.settings import Settings
from brandloop.tools.providers._http import redact

QUERY_KEY = "UrlQueryKey/555+aaa"  # written %2F and %2B in the URL


def test_the_redacted_set_is_the_input_checks_set_short_ones_included() -> None:
    from brandloop.settings import configured_credentials, credentials_to_redact

    settings = Settings(
        openai_api_key=SecretStr("sk-test-forms-0123456789"),
        openai_base_url="https://gw.example/v1?api-version=2024-02-01&api_key=UrlQueryKey%2F555%2Baaa",
        a1111_api_auth=SecretStr("admin:a1111-passw0rd"),
        redis_url="redis://u:RedisPassw0rd@127.0.0.1:6379/0",
        c2pa_remote_token=SecretStr("short7x"),
    )
    redacted = credentials_to_redact(settings)
    for value in (
        "sk-test-forms-0123456789",
        "UrlQueryKey%2F555%2Baaa",  # as a server echoes the request's path
        QUERY_KEY,
        "admin:a1111-passw0rd",
        "a1111-passw0rd",
        "RedisPassw0rd",
        "short7x",
    ):
        assert value in redacted, value
    assert "2024-02-01" not in redacted  # not a key-named value
    checked = configured_credentials(settings)
    assert set(checked) == {v for v in redacted if len(v) >= 8}
    assert checked[QUERY_KEY] == "BRANDLOOP_OPENAI_BASE_URL"


def _encoded_runs(secret: str) -> set[str]:
    """Every 8 base64 characters that depend on ``secret`` alone, at each alignment."""
    runs = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret.encode()).decode()
        core = encoded[-(-8 * shift // 6) : 8 * (shift + len(secret)) // 6]
        runs |= {core[i : i + 8] for i in range(len(core) - 7)}
    return runs


@pytest.mark.parametrize("before", ["", "a", "ab", "Basic-ish ", "decoded bob:"])
def test_a_credential_is_found_as_base64_at_any_alignment(before: str) -> None:
    secret = "UrlPassw0rd-xyz987"
    encoded = base64.b64encode(f"{before}{secret} and after".encode()).decode()
    cleaned = redact(f"the server says {encoded} back", [secret])
    assert "[redacted]" in cleaned, cleaned
    left = [run for run in _encoded_runs(secret) if run in cleaned]
    assert left == [], (left, cleaned)
    # a short one only whole, as written: four base64 characters turn up in ids by chance
    short = "req_" + base64.b64encode(f"{before}pw12".encode()).decode()
    assert redact(short, ["pw12"]) == short
