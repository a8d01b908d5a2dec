"""Where the real services for server-marked tests are: started by scripts/services.sh.

In CI (``CI`` set) a missing service is a failure, not a skip, so a broken launcher cannot hide.
"""

from __future__ import annotations

import os

import pytest


def service_env(name: str) -> str:
    value = os.environ.get(name)
    if value:
        return value
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not set: .ci/run must start the services (scripts/services.sh start)")
    pytest.skip(f"{name} not set; run `eval $(bash scripts/services.sh start)` to include this test")
