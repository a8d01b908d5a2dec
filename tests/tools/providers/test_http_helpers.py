"""Retry-After parsing and secret redaction shared by the HTTP adapters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from brandloop.tools.providers._http import redact, retry_after_seconds


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the finer one wins
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": "999"}, 60.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(httpx.Headers(headers)) == expected


def test_retry_after_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    wait = retry_after_seconds(httpx.Headers({"retry-after": when}))
    assert wait is not None and 25 <= wait <= 30


def test_redact_removes_known_secrets_and_key_shapes() -> None:
    text = "bad key sk-live-abcdefghijkl and hunter2pass and sk-proj-ZZZZZZZZZZZZZZ"
    cleaned = redact(text, ["hunter2pass", None, ""])
    assert "hunter2pass" not in cleaned and "sk-live" not in cleaned and "sk-proj" not in cleaned
    assert cleaned.count("[redacted]") == 3


def test_redact_removes_any_eight_character_run_of_a_configured_secret() -> None:
    key = "T3fakeKEYabcdefghijklmnopqrstuvwxyz0123456789"
    text = f"tail {key[-12:]}, middle {key[9:17]}, seven {key[:7]} and a short pin 4321"
    cleaned = redact(text, [key, "4321"])
    assert (
        cleaned == f"tail [redacted], middle [redacted], seven {key[:7]} and a short pin [redacted]"
    )
