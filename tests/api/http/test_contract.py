"""The API does what its schema says, exactly: strict request types (no ``true`` for a number,
no ``"3"`` for an integer, ASCII digits only), a zone on every timestamp read back, an ``Allow``
header naming every method of a path, a 400 problem for a malformed ``Last-Event-ID``, and
``/metrics`` behind the metrics token or an admin key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from brandloop.registry.db import Database
from brandloop.registry.models_service import JobRow
from tests.api.http.conftest import Keys, assert_problem, wait_job

GEN = {"brief": "a steaming cup on a wooden table", "brand": "Acme Coffee", "size": "64x64"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("budget_usd", True),  # a bool is not $1
        ("count", "3"),  # a string is not an integer
        ("count", True),
        ("count", 2.0),
        ("seed", "42"),
        ("seed", False),
        ("size", "\u0666\u0664x\u0666\u0664"),  # Arabic-Indic digits
        ("size", "６４x６４"),  # fullwidth digits
        ("size", " 64x64"),
        ("aspect_ratio", "\u0661\u0666:\u0669"),
        ("allow_preview", "true"),
        ("allow_preview", 1),
    ],
)
def test_a_body_of_the_wrong_type_is_422_and_nothing_is_queued(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database, field: str, value: Any
) -> None:
    response = client.post(
        "/v1/generations", json={**GEN, field: value}, headers=keys["A", "creator"]
    )
    body = assert_problem(response, 422, "validation")
    assert any(field in error["loc"] for error in body["errors"]), body
    with db.session() as session:
        assert session.scalars(select(JobRow.id)).all() == []


def test_what_the_schema_allows_is_taken(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    """An integer where a number is asked for, and ASCII sizes, are the schema's own."""
    creator = keys["A", "creator"]
    made = client.post(
        "/v1/generations",
        json={**GEN, "budget_usd": 1, "count": 1, "seed": 7},
        headers=creator,
    )
    assert made.status_code == 202, made.text
    assert wait_job(client, made.json()["id"], creator)["state"] == "succeeded"


@pytest.mark.parametrize(
    "formats",
    [["\u0661\u0660\u0662\u0664x\u0661\u0660\u0662\u0664"], ["16:9", "\u0661:\u0661"], [1]],
)
def test_campaign_formats_are_ascii(
    client: TestClient, keys: Keys, acme: dict[str, Any], formats: list[Any]
) -> None:
    body = {"brand": "Acme Coffee", "budget_usd": 1, "assets": [{"brief": "b", "formats": formats}]}
    assert_problem(
        client.post("/v1/campaigns", json=body, headers=keys["A", "creator"]), 422, "validation"
    )


@pytest.mark.parametrize(
    "query",
    [
        "/v1/jobs?limit=%2B5",  # +5
        "/v1/jobs?limit=5_0",
        "/v1/jobs?limit=%D9%A3",  # Arabic-Indic 3
        "/v1/jobs?limit=%205",
        "/v1/jobs?limit=5%0A",
        "/v1/runs?offset=1e3",
        "/v1/runs?since=2026-01-01",  # a moment needs its zone
        "/v1/runs?since=2026-01-01T00:00:00",
        "/v1/runs?until=0",  # not a Unix time
        "/v1/costs?period=custom&start=0&end=2026-01-01",
        "/v1/costs?period=custom&start=20260101&end=2026-01-01",
    ],
)
def test_query_values_are_what_the_schema_says(client: TestClient, keys: Keys, query: str) -> None:
    assert_problem(client.get(query, headers=keys["A", "viewer"]), 422, "validation")


def test_query_values_in_their_exact_form_are_taken(client: TestClient, keys: Keys) -> None:
    viewer = keys["A", "viewer"]
    for query in (
        "/v1/jobs?limit=5",
        "/v1/runs?offset=0&since=2026-01-01T00:00:00Z&until=2036-01-01T00:00:00%2B02:00",
        "/v1/costs?period=custom&start=2026-01-01&end=2026-01-31",
    ):
        assert client.get(query, headers=viewer).status_code == 200, query
    made = client.post(
        "/v1/generations?wait=0.5", json={**GEN, "brand": "nope"}, headers=keys["A", "creator"]
    )
    assert made.status_code != 422, made.text  # wait=0.5 is a number the schema allows
    nan = client.post("/v1/generations?wait=nan", json=GEN, headers=keys["A", "creator"])
    assert_problem(nan, 422, "validation")


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() is not None, text
    return moment


def test_every_timestamp_read_back_has_its_zone(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    """On SQLite (which stores no zone) as on PostgreSQL."""
    creator, admin = keys["A", "creator"], keys["A", "admin"]
    job = client.post("/v1/generations", json=GEN, headers=creator).json()
    done = wait_job(client, job["id"], creator)
    for field in ("created_at", "started_at", "finished_at"):
        _aware(done[field])
    run = client.get(f"/v1/runs/{done['run_id']}", headers=creator).json()
    _aware(run["created_at"])
    listed = client.get("/v1/jobs", headers=creator).json()
    assert all(_aware(j["created_at"]) for j in listed)
    key = client.post("/v1/keys", json={"role": "viewer"}, headers=admin).json()
    _aware(key["created_at"])
    with client.stream("GET", f"/v1/jobs/{job['id']}/events", headers=creator) as stream:
        text = "".join(stream.iter_text())
    ats = [line for line in text.splitlines() if '"at": ' in line]
    assert ats
    for line in ats:
        _aware(line.split('"at": "', 1)[1].split('"', 1)[0])


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/v1/generations", {"POST"}),
        ("OPTIONS", "/v1/brands", {"GET", "POST"}),
        ("DELETE", "/v1/brands", {"GET", "POST"}),
        ("PUT", "/v1/keys", {"GET", "POST"}),
        ("POST", "/v1/jobs/some-job", {"GET"}),
    ],
)
def test_allow_names_every_method_of_the_path(
    client: TestClient, keys: Keys, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path, headers=keys["A", "admin"])
    assert_problem(response, 405, "method-not-allowed")
    named = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed <= named and method not in named, named


@pytest.mark.parametrize(
    "last_event_id",
    [
        "abc",
        "-1",
        "3.0",
        "\u0663",  # an Arabic-Indic 3
        str(2**63),  # past the registry's 64-bit sequence numbers
        "99999999999999999999",
        "1" * 40,
    ],
)
def test_a_malformed_last_event_id_is_a_400_problem(
    client: TestClient, keys: Keys, acme: dict[str, Any], last_event_id: str
) -> None:
    creator = keys["A", "creator"]
    job = client.post("/v1/generations", json=GEN, headers=creator).json()
    response = client.get(
        f"/v1/jobs/{job['id']}/events",
        headers={**creator, "Last-Event-ID": last_event_id.encode()},
    )
    body = assert_problem(response, 400, "bad-input")
    assert "Last-Event-ID" in body["detail"]
    wait_job(client, job["id"], creator)


def test_the_largest_last_event_id_is_a_stream_with_nothing_left(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    creator = keys["A", "creator"]
    job = client.post("/v1/generations", json=GEN, headers=creator).json()
    wait_job(client, job["id"], creator)
    with client.stream(
        "GET",
        f"/v1/jobs/{job['id']}/events",
        headers={**creator, "Last-Event-ID": str(2**63 - 1)},
    ) as stream:
        assert stream.status_code == 200
        text = "".join(stream.iter_text())
    assert "event: end" in text and "\nid: " not in text


def test_metrics_need_the_metrics_token_or_an_admin_key(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    token = "scrape-" + "x" * 30
    client = make_client(metrics_token=token)
    assert_problem(client.get("/metrics"), 401, "unauthorized")
    assert_problem(
        client.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized"
    )
    assert_problem(
        client.get("/metrics", headers={"Authorization": f"Bearer {token}x"}), 401, "unauthorized"
    )
    for role in ("viewer", "creator", "approver"):
        assert_problem(client.get("/metrics", headers=keys["A", role]), 403, "forbidden")
    for headers in ({"Authorization": f"Bearer {token}"}, keys["A", "admin"], keys["B", "admin"]):
        scraped = client.get("/metrics", headers=headers)
        assert scraped.status_code == 200 and "brandloop_jobs" in scraped.text


def test_without_a_metrics_token_only_admin_keys_read_metrics(
    client: TestClient, keys: Keys
) -> None:
    assert_problem(client.get("/metrics"), 401, "unauthorized")
    assert_problem(
        client.get("/metrics", headers={"Authorization": "Bearer "}), 401, "unauthorized"
    )
    assert client.get("/metrics", headers=keys["A", "admin"]).status_code == 200


def test_a_short_metrics_token_is_refused_at_start() -> None:
    from pydantic import ValidationError

    from brandloop.api.config import ApiSettings

    with pytest.raises(ValidationError, match="at least 16 characters"):
        ApiSettings(metrics_token="short")
