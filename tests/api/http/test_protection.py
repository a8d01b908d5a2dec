"""Protection: body limit (413), rate limits (429 + Retry-After), daily spend quota (402),
Idempotency-Key replay, CORS off by default, security headers, no stack trace on errors."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.api.deps import get_session
from brandloop.logs import JsonFormatter, request_id_var, run_id_var
from tests.api.http.conftest import Keys, assert_problem, brand_kit

GEN = {"brief": "a steaming cup", "brand": "Acme Coffee", "size": "64x64"}


def test_body_over_the_limit_is_413(make_client: Any, keys: Keys) -> None:
    client: TestClient = make_client(workers=0, max_body_bytes=2048)
    big = {"brief": "x" * 5000, "brand": "Acme Coffee"}
    assert_problem(
        client.post("/v1/generations", json=big, headers=keys["A", "creator"]),
        413,
        "payload-too-large",
    )

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"x" * 1000

    response = client.post(
        "/v1/generations",
        content=chunks(),
        headers={**keys["A", "creator"], "Content-Type": "application/json"},
    )
    assert_problem(response, 413, "payload-too-large")


def test_rate_limit_per_key_with_retry_after(make_client: Any, keys: Keys) -> None:
    client: TestClient = make_client(workers=0, rate_limit_per_minute=60, rate_limit_burst=3)
    fast, other = keys["A", "viewer"], keys["A", "creator"]
    statuses = [client.get("/v1/runs", headers=fast).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get("/v1/runs", headers=fast)
    assert_problem(limited, 429, "rate-limited")
    assert int(limited.headers["retry-after"]) >= 1
    assert (
        client.get("/v1/runs", headers=other).status_code == 200
    )  # another key has its own bucket


def test_daily_spend_quota_is_402(make_client: Any, keys: Keys) -> None:
    client: TestClient = make_client(daily_quota_usd=0.05)
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    problem = assert_problem(
        client.post(
            "/v1/generations", json={**GEN, "budget_usd": 0.5}, headers=keys["A", "creator"]
        ),
        402,
        "quota-exceeded",
    )
    assert "daily quota" in problem["detail"]
    ok = client.post(
        "/v1/generations?wait=60", json={**GEN, "budget_usd": 0.05}, headers=keys["A", "creator"]
    )
    assert ok.status_code == 200 and ok.json()["cost_usd"] > 0
    assert_problem(
        client.post(
            "/v1/generations", json={**GEN, "budget_usd": 0.05}, headers=keys["A", "creator"]
        ),
        402,
        "quota-exceeded",
    )
    # the quota is per tenant
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["B", "admin"]).status_code == 201
    )
    assert (
        client.post(
            "/v1/generations", json={**GEN, "budget_usd": 0.05}, headers=keys["B", "creator"]
        ).status_code
        == 202
    )
    campaign = {"brand": "Acme Coffee", "budget_usd": 1.0, "assets": [{"brief": "x"}]}
    assert_problem(
        client.post("/v1/campaigns", json=campaign, headers=keys["A", "creator"]),
        402,
        "quota-exceeded",
    )


def test_idempotency_key_replays_the_first_answer(make_client: Any, keys: Keys) -> None:
    client: TestClient = make_client(workers=0)
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    headers = {**keys["A", "creator"], "Idempotency-Key": "order-42"}
    first = client.post("/v1/generations", json=GEN, headers=headers)
    second = client.post("/v1/generations", json=GEN, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert len(client.get("/v1/jobs", headers=headers).json()) == 1
    assert_problem(
        client.post("/v1/generations", json={**GEN, "count": 2}, headers=headers),
        422,
        "idempotency-key-reused",
    )
    # keys are per tenant: B's same key is B's own
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["B", "admin"]).status_code == 201
    )
    other = client.post(
        "/v1/generations", json=GEN, headers={**keys["B", "creator"], "Idempotency-Key": "order-42"}
    )
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]
    thread_headers = {**keys["A", "creator"], "Idempotency-Key": "thread-1"}
    t1 = client.post("/v1/threads", json={"brand": "Acme Coffee"}, headers=thread_headers).json()
    t2 = client.post("/v1/threads", json={"brand": "Acme Coffee"}, headers=thread_headers).json()
    assert t1["id"] == t2["id"]


def test_security_headers_cors_off_and_request_id(client: TestClient, keys: Keys) -> None:
    response = client.get(
        "/v1/runs", headers={**keys["A", "viewer"], "Origin": "https://evil.example"}
    )
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "access-control-allow-origin" not in response.headers
    assert len(response.headers["x-request-id"]) == 32
    preflight = client.options(
        "/v1/runs",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )


def test_cors_when_configured(make_client: Any) -> None:
    client: TestClient = make_client(workers=0, cors_origins=["https://app.example"])
    response = client.get("/healthz", headers={"Origin": "https://app.example"})
    assert response.headers["access-control-allow-origin"] == "https://app.example"


def test_an_unexpected_error_is_a_bare_500_problem(client: TestClient, keys: Keys) -> None:
    def broken() -> Any:
        raise RuntimeError("secret sk-live-123 in /etc/brandloop")

    client.app.dependency_overrides[get_session] = broken  # type: ignore[attr-defined]
    response = client.get("/v1/runs", headers=keys["A", "viewer"])
    problem = assert_problem(response, 500, "internal")
    assert "sk-live" not in response.text and "RuntimeError" not in response.text
    assert problem["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"brief": "", "brand": "Acme Coffee"}, "validation"),
        ({"brief": "x", "brand": "Acme Coffee", "size": "5x5"}, "validation"),
        (
            {"brief": "x", "brand": "Acme Coffee", "size": "64x64", "aspect_ratio": "1:1"},
            "validation",
        ),
        ({"brief": "x", "brand": "Acme Coffee", "count": 0}, "validation"),
        ({"brief": "x", "brand": "Acme Coffee", "surprise": 1}, "validation"),
        # the schema's pattern for a template reference
        ({"brief": "x", "brand": "Acme Coffee", "template": "Bad Ref!"}, "validation"),
        # a model this catalog does not hold is not found, like an unknown brand
        ({"brief": "x", "brand": "Acme Coffee", "model": "nope/none"}, "not-found"),
    ],
)
def test_bad_generation_input_is_a_422_problem(
    client: TestClient, keys: Keys, body: dict[str, Any], kind: str
) -> None:
    status = 404 if kind == "not-found" else 422
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    assert_problem(
        client.post("/v1/generations", json=body, headers=keys["A", "creator"]), status, kind
    )
    assert client.get("/v1/jobs", headers=keys["A", "viewer"]).json() == []


def test_not_json_is_a_problem(client: TestClient, keys: Keys) -> None:
    response = client.post(
        "/v1/generations",
        content=b"{not json",
        headers={**keys["A", "creator"], "Content-Type": "application/json"},
    )
    assert_problem(response, 422, "validation")


def test_json_log_lines_carry_request_and_run_ids() -> None:
    record = logging.LogRecord(
        "brandloop.jobs", logging.INFO, __file__, 1, "hello %s", ("world",), None
    )
    r1, r2 = request_id_var.set("req-1"), run_id_var.set("run_1")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(r1)
        run_id_var.reset(r2)
    assert (
        line["msg"] == "hello world" and line["request_id"] == "req-1" and line["run_id"] == "run_1"
    )


def test_opentelemetry_spans_per_request_and_job(settings: Any, keys: Keys) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from brandloop.api.app import create_app
    from brandloop.api.config import ApiSettings

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(
        settings, ApiSettings(workers=1), use_memory=False, tracer=provider.get_tracer("test")
    )
    with TestClient(app) as client:
        assert (
            client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code
            == 201
        )
        job = client.post("/v1/generations?wait=60", json=GEN, headers=keys["A", "creator"]).json()
        assert job["state"] == "succeeded"
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert spans["POST /v1/generations"].attributes["http.status_code"] == 200
    job_span = spans[f"job {job['id']}"]
    assert job_span.attributes["brandloop.run_id"] == job["run_id"]
    names = [event.name for event in job_span.events]
    assert "generate.attempt_started" in names and "finalize.done" in names
