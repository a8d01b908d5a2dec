"""The API does what its schema says, exactly: strict request types (no ``true`` for a number,
no ``"3"`` for an integer, ASCII digits only), a zone on every timestamp read back, an ``Allow``
header naming every method of a path, a 400 problem for a malformed ``Last-Event-ID``, and
``/metrics`` behind the metrics token or an admin key."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
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
        ("count", 2.5),  # 2.0 is an integer (JSON Schema's own reading): see below
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
        "1" * 19,  # 19 digits: the schema's pattern says at most 18
        "99999999999999999999",
        "1" * 40,
        "",  # a browser sends none rather than an empty one
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
        headers={**creator, "Last-Event-ID": "9" * 18},
    ) as stream:
        assert stream.status_code == 200
        text = "".join(stream.iter_text())
    assert "event: end" in text and "\nid: " not in text


def test_two_last_event_id_headers_are_a_400(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    """Which one would it be? As with two Idempotency-Key headers, neither is taken (the
    first was used silently: an outside tester)."""
    creator = keys["A", "creator"]
    job = client.post("/v1/generations", json=GEN, headers=creator).json()
    wait_job(client, job["id"], creator)
    headers = [*creator.items(), ("Last-Event-ID", "3"), ("Last-Event-ID", "5")]
    answer = client.get(f"/v1/jobs/{job['id']}/events", headers=headers)
    assert_problem(answer, 400, "bad-input")
    assert "one Last-Event-ID" in answer.json()["detail"]


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


# ---- rules the schema now states, and rules relaxed where refusing was not needed; each is a
# ---- behaviour the schemathesis run (test_schemathesis.py) depends on, tested here directly


def test_a_whole_number_written_as_a_float_is_an_integer(
    client: TestClient, keys: Keys, acme: dict[str, Any], db: Database
) -> None:
    """JSON Schema's ``type: integer`` takes 2.0; so do the bodies (true, "2" and 2.5 do not)."""
    made = client.post(
        "/v1/generations",
        json={**GEN, "count": 2.0, "seed": 7.0},
        headers=keys["A", "creator"],
    )
    assert made.status_code == 202, made.text
    with db.session() as session:
        request = session.get(JobRow, made.json()["id"]).request  # type: ignore[union-attr]
    assert request["count"] == 2 and request["seed"] == 7


@pytest.mark.parametrize(
    "shape",
    [
        {"size": "0x0"},
        {"size": "63x64"},
        {"size": "64x4097"},
        {"size": "01024x640"},  # no leading zero
        {"aspect_ratio": "0:1"},
        {"aspect_ratio": "16:09"},
        {"size": "1024x640", "aspect_ratio": "16:9"},  # not both (the schema's "not")
        {"brief": " \t\x1c\u3000"},  # blank as Python strips it, \x1c included
        {"providers": []},
        {"providers": ["Open AI"]},
        {"template": "brand-hero@1234567"},
        {"template": "Brand Hero"},
    ],
)
def test_what_the_schema_refuses_of_a_generation_is_a_422(
    client: TestClient, keys: Keys, acme: dict[str, Any], shape: dict[str, Any]
) -> None:
    assert_problem(
        client.post("/v1/generations", json={**GEN, **shape}, headers=keys["A", "creator"]),
        422,
        "validation",
    )


@pytest.mark.parametrize(
    ("shape", "what"),
    [
        ({"model": "acme/none"}, "unknown model"),
        ({"providers": ["stability"]}, "not configured"),
        ({"template": "nope:production"}, "does not exist"),
    ],
)
def test_a_model_provider_or_template_that_is_not_here_is_a_404(
    client: TestClient, keys: Keys, acme: dict[str, Any], shape: dict[str, Any], what: str
) -> None:
    """Like an unknown brand: the request is well formed, what it names does not exist here."""
    response = client.post("/v1/generations", json={**GEN, **shape}, headers=keys["A", "creator"])
    assert what in assert_problem(response, 404, "not-found")["detail"]


def test_a_ratio_past_four_to_one_is_made_at_four_to_one() -> None:
    from brandloop.domain import GenerationRequest, size_for_aspect

    assert size_for_aspect("9:1") == size_for_aspect("4:1") == (1024, 256)
    assert size_for_aspect("1:999") == size_for_aspect("1:4") == (256, 1024)
    assert size_for_aspect("16:9") == (1024, 576)
    request = GenerationRequest(brief="b", brand="x", aspect_ratio="9:1")
    assert request.dimensions() == (1024, 256)


def test_a_campaign_budget_is_at_least_a_cent(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    body = {"brand": "Acme Coffee", "assets": [{"brief": "a cup", "formats": ["64x64"]}]}
    creator = keys["A", "creator"]
    for budget in (0.009, 5e-324):
        refused = client.post("/v1/campaigns", json={**body, "budget_usd": budget}, headers=creator)
        assert_problem(refused, 422, "validation")
    taken = client.post("/v1/campaigns", json={**body, "budget_usd": 0.01}, headers=creator)
    assert taken.status_code == 202, taken.text


def test_label_weights_are_version_numbers_with_one_above_zero(
    client: TestClient, keys: Keys
) -> None:
    approver = keys["A", "approver"]
    huge = {"1": 1e308, "2": 1e308}  # their sum would be infinite (the CLI and files: exit 2)
    for weights in ({"v1": 1.0}, {"0": 1.0}, {"1": 0.0}, {"1": -1.0}, {"1": 1e7}, huge):
        refused = client.put(
            "/v1/templates/brand-hero/labels/canary", json={"weights": weights}, headers=approver
        )
        assert refused.status_code == 422, (weights, refused.text)
    taken = client.put(
        "/v1/templates/brand-hero/labels/canary",
        json={"weights": {"1": 1.0, "2": 0.0}},
        headers=approver,
    )
    assert taken.status_code in (200, 404), taken.text  # brand-hero@2 may not exist: 404


def test_a_template_rejection_without_a_note_is_refused_and_the_schema_says_so(
    client: TestClient, keys: Keys
) -> None:
    decision = client.get("/openapi.json").json()["components"]["schemas"]["TemplateReviewDecision"]
    from brandloop.api.schemas import NOT_BLANK

    rule = {"required": ["note"], "properties": {"note": {"pattern": NOT_BLANK}}}
    assert rule in decision["anyOf"]
    for body in ({"decision": "reject"}, {"decision": "reject", "note": "  "}):
        refused = client.post(
            "/v1/templates/brand-hero/versions/1/review", json=body, headers=keys["A", "approver"]
        )
        # the schema's rule, checked with the body (as any other): 422 validation
        assert_problem(refused, 422, "validation")


def test_a_new_version_without_a_commit_message_says_it_has_none(
    client: TestClient, keys: Keys
) -> None:
    """The CLI asks for -m; over HTTP the schema takes a blank message, so the version's
    message says there was none (the review queue shows it)."""
    creator = keys["A", "creator"]
    for message in ("", "   "):
        added = client.post(
            "/v1/templates/brand-hero/versions",
            json={"body": "{{ brief }}, {{ palette_clause }}", "message": message},
            headers=creator,
        )
        assert added.status_code == 201, added.text
        assert added.json()["message"] == "(no message)", added.json()


def test_a_custom_cost_period_is_any_two_days(client: TestClient, keys: Keys) -> None:
    viewer = keys["A", "viewer"]
    backwards = client.get(
        "/v1/costs?period=custom&start=2026-02-01&end=2026-01-01", headers=viewer
    )
    assert backwards.status_code == 200, backwards.text
    assert backwards.json()["runs"] == 0 and backwards.json()["total_usd"] == 0
    defaults = client.get("/v1/costs?period=custom", headers=viewer).json()
    end = date.fromisoformat(defaults["end"])
    assert end == datetime.now(UTC).date()
    assert date.fromisoformat(defaults["start"]) == end - timedelta(days=29)
    only_end = client.get("/v1/costs?period=custom&end=2026-03-31", headers=viewer).json()
    assert only_end["start"] == "2026-03-02"
    for query in ("start=0001-01-01&end=9999-12-31", "end=0001-01-05"):
        edge = client.get(f"/v1/costs?period=custom&{query}", headers=viewer)
        assert edge.status_code == 200, (query, edge.text)


def test_query_numbers_are_bounded_in_the_schema_and_json_numbers_are_taken(
    client: TestClient, keys: Keys
) -> None:
    schema = client.get("/openapi.json").json()
    limit = next(
        p for p in schema["paths"]["/v1/jobs"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert limit["schema"]["minimum"] == 1 and limit["schema"]["maximum"] == 500
    assert_problem(client.get("/v1/jobs?limit=0", headers=keys["A", "viewer"]), 422, "validation")
    creator = keys["A", "creator"]
    for wait in ("1e-05", "2.5E%2B1", "0.000001"):
        made = client.post(
            f"/v1/generations?wait={wait}", json={**GEN, "brand": "nope"}, headers=creator
        )
        assert made.status_code == 404, (wait, made.text)  # the wait was taken, the brand is not
    for wait in ("-1", "1e", "inf", "301"):
        made = client.post(f"/v1/generations?wait={wait}", json=GEN, headers=creator)
        assert_problem(made, 422, "validation")


def test_keys_me_is_not_a_key_id(client: TestClient, keys: Keys) -> None:
    admin = keys["A", "admin"]
    for method in ("DELETE", "OPTIONS"):
        response = client.request(method, "/v1/keys/me", headers=admin)
        assert_problem(response, 405, "method-not-allowed")
        assert response.headers["allow"] == "GET, HEAD"
    assert client.get("/v1/keys/me", headers=admin).status_code == 200
    assert_problem(client.delete("/v1/keys/key_nope", headers=admin), 404, "not-found")


def test_the_schema_states_credentials_conflicts_quota_and_no_nulls(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            needs_key = path.startswith("/v1") or path == "/metrics"
            assert ("security" in operation) == needs_key, (method, path)
            if method == "post":
                assert "409" in operation["responses"], path
            for parameter in operation.get("parameters", []):
                assert "anyOf" not in parameter["schema"], (path, parameter)
    for path in (
        "/v1/generations",
        "/v1/threads",
        "/v1/campaigns",
        "/v1/threads/{thread_id}/messages",
    ):
        assert {"402", "409", "503"} <= set(schema["paths"][path]["post"]["responses"]), path
    text = json.dumps(schema)
    assert '"ge":' not in text and '"le":' not in text  # bounds are minimum/maximum


def test_the_brand_kit_schema_states_its_colours_and_formats(
    client: TestClient, keys: Keys
) -> None:
    from tests.api.http.conftest import brand_kit

    admin = keys["A", "admin"]
    for change in (
        {"palette": [{"hex": ""}]},
        {"palette": [{"hex": "#12345g"}]},
        {"default_formats": ["0x0"]},
        {"forbidden_colours": ["red"]},
    ):
        assert_problem(
            client.post("/v1/brands", json={**brand_kit(), **change}, headers=admin),
            422,
            "validation",
        )
    kit = client.get("/openapi.json").json()["components"]["schemas"]["BrandKit"]
    assert kit["properties"]["default_formats"]["items"]["pattern"].startswith("^(6[4-9]")


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/v1/brands", "viewer"),
        ("/v1/campaigns", "viewer"),
        ("/healthz", None),
        ("/v1/keys/me", "admin"),
    ],
)
def test_head_answers_wherever_get_does_with_no_body(
    client: TestClient, keys: Keys, path: str, role: str | None
) -> None:
    """RFC 9110: HEAD is GET without the body. Every route answered 405 (outside tester: link
    checkers and uptime monitors ask with HEAD); the same checks apply - no key is a 401."""
    headers = keys["A", role] if role else {}
    got = client.get(path, headers=headers)
    head = client.head(path, headers=headers)
    assert (head.status_code, head.content) == (got.status_code, b""), head.text
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers.get("content-length") == got.headers.get("content-length")
    if role:
        assert_problem(client.get(path), 401, "unauthorized")
        refused = client.head(path)
        assert (refused.status_code, refused.content) == (401, b"")
    # a path that serves no GET: HEAD is refused as GET is, naming the methods it serves
    post_only = client.head("/v1/generations", headers=keys["A", "creator"])
    assert post_only.status_code == 405 and post_only.headers["allow"] == "POST"


def test_head_of_a_stream_answers_its_head_and_ends(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    """The events of a job stream until the job ends; HEAD gets the stream's head and returns."""
    made = client.post("/v1/generations", json=GEN, headers=keys["A", "creator"])
    assert made.status_code == 202, made.text
    head = client.head(made.json()["links"]["events"], headers=keys["A", "viewer"])
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("text/event-stream")


@pytest.mark.parametrize("label", ["-", "_", "-x", "_x"])
def test_a_label_the_route_refuses_is_outside_the_schemas_pattern(
    client: TestClient, keys: Keys, label: str
) -> None:
    """The schema is the contract: the path's pattern let `-x` through, and the route refused it
    as `bad-input` (outside tester); now the schema's own 422 `validation` refuses it."""
    pattern = client.get("/openapi.json").json()["paths"]["/v1/templates/{name}/labels/{label}"][
        "put"
    ]["parameters"]
    label_pattern = next(p for p in pattern if p["name"] == "label")["schema"]["pattern"]
    assert re.fullmatch(label_pattern, label) is None
    refused = client.put(
        f"/v1/templates/brand-hero/labels/{label}",
        json={"weights": {"1": 1.0}},
        headers=keys["A", "approver"],
    )
    assert_problem(refused, 422, "validation")
