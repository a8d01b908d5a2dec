"""A fake paid provider for tests that cross a process boundary: it keeps a ledger file.

``BRANDLOOP_PROVIDER_PLUGINS=tests.agent.fake_providers:ledger_provider`` puts it in place of
the procedural provider inside a real ``brandloop`` process. Each call appends
``start <key>`` when it begins and ``paid <key>`` when it returns an image, so a test can
count what a backend would have billed. From the call numbered ``BL_TEST_SLOW_FROM`` (0-based,
per process) on, calls sleep ``BL_TEST_SLEEP_S`` seconds first: a window to kill -9 in.
With ``BL_TEST_KILL_AT`` (0-based, per process) the call of that number kills its own process
with SIGKILL as it begins, before anything else of its node has run: a crash right after the
nodes before it (plan, and the round before) have written their decisions.
``stalled_ledger_provider`` is made only after ``BL_TEST_STALL_S`` seconds: a process finishing
a review verdict makes its providers right after claiming the run, so it is held there.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from brandloop.providers import ImageRequest, ImageResult
from tests.backends import steady_procedural


class LedgerProvider:
    name = "procedural"

    def __init__(
        self, ledger: Path, slow_from: int | None, sleep_s: float, kill_at: int | None = None
    ) -> None:
        self.inner = steady_procedural()
        self.ledger = ledger
        self.slow_from = slow_from
        self.sleep_s = sleep_s
        self.kill_at = kill_at
        self.calls = 0

    def _write(self, line: str) -> None:
        with self.ledger.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    async def generate(self, request: ImageRequest) -> ImageResult:
        number = self.calls
        self.calls += 1
        if number == self.kill_at:
            self._write(f"killed {request.idempotency_key}")
            os.kill(os.getpid(), signal.SIGKILL)
        self._write(f"start {request.idempotency_key}")
        if self.slow_from is not None and number >= self.slow_from:
            await asyncio.sleep(self.sleep_s)
        result = await self.inner.generate(request)
        self._write(f"paid {request.idempotency_key}")
        return result


def ledger_provider() -> LedgerProvider:
    slow = os.environ.get("BL_TEST_SLOW_FROM")
    kill = os.environ.get("BL_TEST_KILL_AT")
    return LedgerProvider(
        Path(os.environ["BL_TEST_LEDGER"]),
        int(slow) if slow else None,
        float(os.environ.get("BL_TEST_SLEEP_S", "60")),
        int(kill) if kill else None,
    )


def stalled_ledger_provider() -> LedgerProvider:
    time.sleep(float(os.environ.get("BL_TEST_STALL_S", "0")))
    return ledger_provider()
