"""What ``/openapi.json`` gives a client generated from it (openapi-python-client and the like):
errors as ``Problem`` under the media type the server sends them in, every status a route can
answer, the headers it sends, schemas for binary and streamed answers, and request bodies a
generator keeps as they are meant (no ``count`` sent unasked, version weights kept as a map).

Each real answer checked here is validated against what the document declares for it
(``_assert_declared``: the status, the media type, the body's schema, the required headers):
a small part of what schemathesis checks (test_schemathesis.py), on answers schemathesis does
not reach (a memory store that is down, a trust list that is misconfigured, the throttle).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from brandloop.api.problems import ProblemKind
from brandloop.settings import Settings, get_settings
from tests.api.http.conftest import ROOT, Keys, assert_problem, brand_kit, wait_job
from tests.memory.faults import dead_port

PROBLEM = "application/problem+json"
REF = {"$ref": "#/components/schemas/Problem"}


def _doc(client: TestClient) -> dict[str, Any]:
    doc: dict[str, Any] = client.get("/openapi.json").json()
    return doc


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of ``schema`` whose ``#/components/...`` references resolve in ``doc``."""
    return Draft202012Validator({**schema, "components": doc["components"]})


def _assert_declared(doc: dict[str, Any], method: str, path: str, response: Any) -> None:
    """The answer is one the document declares for this operation: its status, its media
    type with a schema the body validates against, and every header declared required."""
    declared = doc["paths"][path][method]["responses"]
    assert str(response.status_code) in declared, (method, path, response.status_code)
    answer = declared[str(response.status_code)]
    media_type = response.headers.get("content-type", "").split(";")[0]
    if answer.get("content"):
        assert media_type in answer["content"], (method, path, media_type, answer["content"])
        schema = answer["content"][media_type]["schema"]
        if media_type.endswith("json"):
            errors = list(_validator(doc, schema).iter_errors(response.json()))
            assert not errors, [e.message for e in errors]
    for name, header in answer.get("headers", {}).items():
        if header.get("required"):
            assert name.lower() in response.headers, (method, path, name)


# ---- 1. errors: the Problem schema under application/problem+json, its types listed, 500


def test_every_error_is_declared_as_a_problem_in_the_media_type_it_is_sent_in(
    client: TestClient,
) -> None:
    doc = _doc(client)
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "500" in responses, (method, path)  # `internal`, docs/http-api.md
            for status, answer in responses.items():
                if int(status) >= 400:
                    assert answer["content"] == {PROBLEM: {"schema": REF}}, (method, path, status)


def test_the_problem_type_lists_every_documented_kind(client: TestClient) -> None:
    kind_schema = _doc(client)["components"]["schemas"]["Problem"]["properties"]["type"]
    errors_section = (ROOT / "docs" / "http-api.md").read_text().split("## Errors")[1]
    table = errors_section.split("## ")[0]
    documented = set(re.findall(r"^\| `([a-z-]+)`(?:, `([a-z-]+)`)?", table, re.M))
    kinds = {kind for pair in documented for kind in pair if kind}
    assert kinds and kinds <= set(get_args(ProblemKind)), kinds - set(get_args(ProblemKind))
    listed = set(kind_schema["examples"])
    assert {f"urn:brandloop:problem:{kind}" for kind in kinds} <= listed
    assert all(f"`{kind}`" in kind_schema["description"] for kind in kinds)
    assert all(re.match(kind_schema["pattern"], value) for value in listed)


def test_a_problem_answer_validates_against_the_declared_problem(
    client: TestClient, keys: Keys
) -> None:
    viewer = keys["A", "viewer"]
    _assert_declared(doc := _doc(client), "get", "/v1/jobs/{job_id}",
                     client.get("/v1/jobs/job_nope", headers=viewer))  # fmt: skip
    missing_key = client.get("/v1/jobs")
    assert missing_key.headers["www-authenticate"] == "Bearer"
    _assert_declared(doc, "get", "/v1/jobs", missing_key)
    bad = client.post("/v1/generations", json={"brief": "x", "brand": "Acme Coffee",
                                               "size": "1x1"}, headers=keys["A", "creator"])  # fmt: skip
    assert_problem(bad, 422, "validation")
    _assert_declared(doc, "post", "/v1/generations", bad)


# ---- 2. count: no default in the schema, so a generated client can leave it out


def _as_a_generated_client_sends(doc: dict[str, Any], model: str, **given: Any) -> dict[str, Any]:
    """The body a generated client sends for these arguments: what is given, and every
    property with a schema ``default`` at that default (openapi-python-client does so)."""
    properties = doc["components"]["schemas"][model]["properties"]
    defaults = {name: spec["default"] for name, spec in properties.items() if "default" in spec}
    return defaults | given


def test_a_generated_clients_follow_up_keeps_the_threads_count(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    """docs/http-api.md (Threads): a follow-up that leaves ``count`` out keeps the previous
    turn's; through POST /v1/generations with a ``thread_id``, as a client generated from the
    schema sends it. A generation with no thread and no count still makes one image."""
    creator = keys["A", "creator"]
    doc = _doc(client)
    count = doc["components"]["schemas"]["GenerationCreate"]["properties"]["count"]
    assert "default" not in count and "thread_id" in count["description"]
    thread = client.post(
        "/v1/threads",
        json={"brand": "Acme Coffee", "message": "two mugs", "size": "64x64", "count": 2},
        headers=creator,
    ).json()
    wait_job(client, thread["messages"][0]["job"]["id"], creator)

    def count_of(body: dict[str, Any]) -> int:
        answer = client.post("/v1/generations", json=body, headers=creator)
        assert answer.status_code == 202, answer.text
        _assert_declared(doc, "post", "/v1/generations", answer)
        run_id = wait_job(client, answer.json()["id"], creator)["run_id"]
        run = client.get(f"/v1/runs/{run_id}", headers=creator).json()
        return int(run["request"]["count"])

    follow_up = _as_a_generated_client_sends(
        doc, "GenerationCreate", brief="add steam", brand="Acme Coffee", thread_id=thread["id"]
    )
    assert "count" not in follow_up
    assert count_of(follow_up) == 2
    plain = _as_a_generated_client_sends(
        doc, "GenerationCreate", brief="a cup", brand="Acme Coffee", size="64x64"
    )
    assert count_of(plain) == 1


# ---- 3. label weights: a map generators keep, validated as before


def test_label_weights_are_a_map_a_generator_keeps_and_still_validated(
    client: TestClient, keys: Keys
) -> None:
    doc = _doc(client)
    weights = doc["components"]["schemas"]["LabelUpdate"]["properties"]["weights"]
    assert "patternProperties" not in weights
    assert weights["additionalProperties"]["type"] == "number"
    assert weights["propertyNames"] == {"pattern": "^[1-9][0-9]{0,5}$"}
    body_schema = {"$ref": "#/components/schemas/LabelUpdate"}
    assert not list(_validator(doc, body_schema).iter_errors({"weights": {"1": 1.0}}))
    for refused in ({"v1": 1.0}, {"1": 0.0}, {"1": -1.0}, {}):
        assert list(_validator(doc, body_schema).iter_errors({"weights": refused})), refused
    url = "/v1/templates/brand-hero/labels/staging"
    approver = keys["A", "approver"]
    for refused, kind in [({"v1": 1.0}, "validation"), ({"01": 1.0}, "validation"),
                          ({"1": 0.0}, "bad-input")]:  # fmt: skip
        answer = client.put(url, json={"weights": refused}, headers=approver)
        assert_problem(answer, 422, kind)
    kept = client.put(url, json={"weights": {"1": 1.0}}, headers=approver)
    assert kept.status_code == 200, kept.text
    _assert_declared(doc, "put", "/v1/templates/{name}/labels/{label}", kept)
    assert kept.json()["label_weights"]["staging"] == {"1": 1.0}


# ---- 4. statuses every route can answer


@pytest.fixture
def dead_chroma(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRANDLOOP_CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("BRANDLOOP_CHROMA_PORT", str(dead_port()))
    get_settings.cache_clear()


def test_memory_unavailable_is_a_declared_503_on_every_memory_route(
    dead_chroma: None, make_client: Callable[..., TestClient], keys: Keys
) -> None:
    client = make_client(use_memory=True)
    assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
    doc = _doc(client)
    creator, brand = keys["A", "creator"], {"brand": "Acme Coffee"}
    note = "note-" + "0" * 32
    for method, path, url, kwargs in [
        ("get", "/v1/memory/search", "/v1/memory/search", {"params": brand | {"q": "cup"}}),
        ("get", "/v1/memory/notes", "/v1/memory/notes", {"params": brand}),
        ("post", "/v1/memory/notes", "/v1/memory/notes", {"json": brand | {"text": "no neon"}}),
        ("delete", "/v1/memory/notes/{note_id}", f"/v1/memory/notes/{note}", {"params": brand}),
    ]:
        answer = client.request(method.upper(), url, headers=creator, **kwargs)
        assert_problem(answer, 503, "memory-unavailable")
        _assert_declared(doc, method, path, answer)


def test_a_misconfigured_trust_list_is_a_declared_503(
    make_client: Callable[..., TestClient], keys: Keys, settings: Settings, tmp_path: Path
) -> None:
    client = make_client()
    assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
    job = client.post(
        "/v1/generations?wait=60",
        json={"brief": "a cup", "brand": "Acme Coffee", "size": "64x64"},
        headers=keys["A", "creator"],
    ).json()
    sha = job["result"]["images"][0]["sha256"]
    doc = _doc(client)
    image = client.get(f"/v1/artifacts/{sha}", headers=keys["A", "viewer"])
    assert image.status_code == 200
    _assert_declared(doc, "get", "/v1/artifacts/{sha256}", image)
    again = client.get(
        f"/v1/artifacts/{sha}", headers=keys["A", "viewer"] | {"If-None-Match": f'"{sha}"'}
    )
    assert again.status_code == 304
    _assert_declared(doc, "get", "/v1/artifacts/{sha256}", again)
    bad = tmp_path / "roots.pem"
    bad.write_text("not a certificate")
    settings.c2pa_trust_anchors = bad
    answer = client.get(f"/v1/artifacts/{sha}/credentials", headers=keys["A", "viewer"])
    assert_problem(answer, 503, "not-ready")
    _assert_declared(doc, "get", "/v1/artifacts/{sha256}/credentials", answer)


def test_the_failed_login_throttle_is_declared_on_health_and_metrics(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(auth_failures_per_minute=1, auth_failures_burst=2)
    doc = _doc(client)
    bogus = {"Authorization": "Bearer bl_bogus"}
    for _ in range(3):
        client.get("/metrics", headers=bogus)
    for path in ("/metrics", "/healthz", "/readyz"):
        answer = client.get(path, headers=bogus)
        assert_problem(answer, 429, "rate-limited")
        _assert_declared(doc, "get", path, answer)
        assert int(answer.headers["retry-after"]) >= 0


def test_deleting_key_me_is_a_declared_405(client: TestClient, keys: Keys) -> None:
    doc = _doc(client)
    answer = client.delete("/v1/keys/me", headers=keys["A", "admin"])
    assert_problem(answer, 405, "method-not-allowed")
    _assert_declared(doc, "delete", "/v1/keys/{key_id}", answer)
    assert doc["paths"]["/v1/keys/{key_id}"]["delete"]["responses"]["405"]["headers"]["Allow"]


# ---- 5. binary and streamed answers have a schema


def test_binary_and_streamed_answers_have_a_schema(client: TestClient) -> None:
    paths = _doc(client)["paths"]
    image = paths["/v1/artifacts/{sha256}"]["get"]["responses"]["200"]["content"]
    assert set(image) == {"image/png", "image/jpeg", "image/webp"}
    assert all(v["schema"] == {"type": "string", "format": "binary"} for v in image.values())
    events = paths["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    assert {"type": "string"} in events["text/event-stream"]["schema"]["anyOf"]
    metrics = paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert metrics["text/plain"]["schema"] == {"type": "string"}
    for path, item in paths.items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                for media_type, spec in answer.get("content", {}).items():
                    assert "schema" in spec, (method, path, status, media_type)


# ---- 6. the headers the server sends are declared


def test_the_headers_sent_are_declared(client: TestClient, keys: Keys) -> None:
    doc = _doc(client)
    paths = doc["paths"]

    def headers(path: str, method: str, status: str) -> set[str]:
        return set(paths[path][method]["responses"][status].get("headers", {}))

    assert "WWW-Authenticate" in headers("/v1/jobs", "get", "401")
    assert "Retry-After" in headers("/v1/jobs", "get", "429")
    assert "Retry-After" in headers("/v1/generations", "post", "409")  # in flight
    assert {"ETag", "Cache-Control"} <= headers("/v1/artifacts/{sha256}", "get", "200")
    assert {"ETag", "Cache-Control"} <= headers("/v1/artifacts/{sha256}", "get", "304")
    assert {"Location", "Idempotent-Replayed"} <= headers("/v1/generations", "post", "202")
    assert {"Location", "Idempotent-Replayed"} <= headers("/v1/generations", "post", "200")
    assert "Location" in headers("/v1/brands", "post", "201")
    assert {"Cache-Control", "Idempotent-Replayed"} <= headers("/v1/keys", "post", "201")
    made = client.post(
        "/v1/keys", json={"role": "viewer", "principal": "r6"}, headers=keys["A", "admin"]
    )
    assert made.headers["cache-control"] == "no-store"
    _assert_declared(doc, "post", "/v1/keys", made)
    assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
    body = {"brief": "a cup", "brand": "Acme Coffee", "size": "64x64"}
    creator = keys["A", "creator"] | {"Idempotency-Key": "shape-6"}
    first = client.post("/v1/generations", json=body, headers=creator)
    replay = client.post("/v1/generations", json=body, headers=creator)
    assert first.headers["location"] == replay.headers["location"]
    assert replay.headers["idempotent-replayed"] == "true"
    for answer in (first, replay):
        _assert_declared(doc, "post", "/v1/generations", answer)


# ---- 7. a note added answers a named model


def test_a_note_added_answers_a_named_model(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    client = make_client(use_memory=True)
    assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
    doc = _doc(client)
    answer_schema = doc["paths"]["/v1/memory/notes"]["post"]["responses"]["201"]["content"]
    assert answer_schema["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NoteCreated"
    }
    note = doc["components"]["schemas"]["NoteCreated"]
    assert set(note["required"]) == {"id", "brand", "text", "redacted"}
    added = client.post(
        "/v1/memory/notes",
        json={"brand": "Acme Coffee", "text": "matte cups only, write to ana@example.com"},
        headers=keys["A", "creator"],
    )
    assert added.status_code == 201, added.text
    _assert_declared(doc, "post", "/v1/memory/notes", added)
    assert added.json()["redacted"] and "ana@example.com" not in added.json()["text"]
