"""Two API replicas (real `brandloop serve` processes) share one rate limit and one throttle of
failed authentications through Redis: the 429 comes at the same total count as with one."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.scale.stack import started_stack

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.mark.parametrize("replicas", [1, 2])
def test_replicas_share_one_rate_limit(tmp_path: Path, replicas: int) -> None:
    with started_stack(
        tmp_path,
        redis_db=12,
        BRANDLOOP_API_RATE_LIMIT_PER_MINUTE="1",
        BRANDLOOP_API_RATE_LIMIT_BURST="6",
        BRANDLOOP_API_AUTH_FAILURES_PER_MINUTE="1",
        BRANDLOOP_API_AUTH_FAILURES_BURST="4",
    ) as stack:
        bases = [stack.start_api() for _ in range(replicas)]
        stack.wait_ready()
        key = json.loads(
            stack.cli(
                "keys",
                "create",
                "--tenant",
                "acme",
                "--principal",
                "ana",
                "--role",
                "viewer",
                "--json",
            )
        )["key"]
        good = {"Authorization": f"Bearer {key}"}
        bad = {"Authorization": "Bearer bl_000000000000_made-up"}
        with httpx.Client(timeout=30) as client:
            by_key = [
                client.get(f"{bases[i % replicas]}/v1/runs", headers=good).status_code
                for i in range(10)
            ]
            failed_auth = [
                client.get(f"{bases[i % replicas]}/v1/runs", headers=bad) for i in range(6)
            ]
    assert by_key == [200] * 6 + [429] * 4
    assert [r.status_code for r in failed_auth] == [401] * 4 + [429] * 2
    assert int(failed_auth[-1].headers["retry-after"]) >= 1
