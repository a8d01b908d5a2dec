"""Schemathesis against the app's own OpenAPI schema: for every operation, generated input
that breaks the schema (and input that fits it) never gets a 5xx, and every 4xx is an RFC 9457
problem+json with a stable type. Runs in CI with the rest of the suite."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from brandloop.api.app import create_app
from brandloop.api.config import ApiSettings
from brandloop.settings import Settings
from tests.api.http.conftest import Keys, brand_kit

EXAMPLES = 15


def _check(response: Any, label: str) -> None:
    assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith("application/problem+json"), label
        body = response.json()
        assert body["type"].startswith("urn:brandloop:problem:"), label
        assert body["status"] == response.status_code
        assert "Traceback" not in response.text


@pytest.mark.slow
def test_bad_input_on_every_operation_is_a_problem_never_a_500(
    settings: Settings, keys: Keys
) -> None:
    app = create_app(
        settings,
        ApiSettings(
            workers=0,
            max_wait_seconds=0,
            rate_limit_per_minute=1_000_000,
            rate_limit_burst=1_000_000,
            auth_failures_per_minute=1_000_000,
            auth_failures_burst=1_000_000,
        ),
        use_memory=False,
    )
    headers = keys["A", "admin"]
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=headers).status_code == 201
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    seen: set[str] = set()
    unsatisfiable: list[str] = []
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        seen.add(label)
        for mode in (GenerationMode.NEGATIVE, GenerationMode.POSITIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            @hypothesis_settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            @given(case=strategy)
            def run(case: Any) -> None:
                response = case.call(headers={**headers, **(case.headers or {})})
                _check(response, f"{case.method} {case.formatted_path}")

            try:
                run()
            except Unsatisfiable:
                # nothing in this operation can be made invalid (no parameters, no body)
                assert mode == GenerationMode.NEGATIVE, label
                unsatisfiable.append(label)
    # operations whose only input is a free-form id (or nothing) cannot be given invalid input;
    # they still get the positive run above with arbitrary ids
    for label in (
        "POST /v1/generations",
        "POST /v1/campaigns",
        "POST /v1/threads",
        "POST /v1/brands",
        "GET /v1/costs",
    ):
        assert label not in unsatisfiable
    assert {
        "POST /v1/generations",
        "GET /v1/jobs/{job_id}/events",
        "GET /v1/artifacts/{sha256}",
    } <= seen
