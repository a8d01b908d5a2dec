"""One shape per concept: the CLI's ``--json`` and the HTTP API serialise the same typed models
(``brandloop.views``), so the same run reads the same field by field on both surfaces; and no
response the API documents hides an untyped object from its OpenAPI schema."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.api.app import create_app
from brandloop.api.auth import create_key
from brandloop.api.cli import main
from brandloop.api.config import ApiSettings
from brandloop.registry.db import Database
from brandloop.settings import Settings
from brandloop.views import AttemptView, BrandView, ModelView, RunTrace, RunView, TraceEvent

ROOT = Path(__file__).resolve().parents[2]
BRIEF = (ROOT / "examples" / "briefs" / "morning-ritual.txt").read_text().strip()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    assert (exc.value.code or 0) == 0, captured.err
    return json.loads(captured.out)


def differences(cli: Any, http: Any, path: str = "") -> list[str]:
    """Every leaf path at which the two documents differ (keys, lengths or values)."""
    if isinstance(cli, dict) and isinstance(http, dict):
        if set(cli) != set(http):
            return [f"{path} keys {sorted(set(cli) ^ set(http))}"]
        return [d for key in cli for d in differences(cli[key], http[key], f"{path}.{key}")]
    if isinstance(cli, list) and isinstance(http, list):
        if len(cli) != len(http):
            return [f"{path} length {len(cli)} != {len(http)}"]
        return [
            d
            for i, (a, b) in enumerate(zip(cli, http, strict=True))
            for d in differences(a, b, f"{path}[{i}]")
        ]
    return [] if cli == http else [path]


def check_image_paths(cli_images: list[dict[str, Any]], http_images: list[dict[str, Any]]) -> None:
    """The one documented difference: the CLI's path is the file here, the API's its URL."""
    for mine, theirs in zip(cli_images, http_images, strict=True):
        assert hashlib.sha256(Path(mine["path"]).read_bytes()).hexdigest() == mine["sha256"]
        assert theirs["path"] == f"/v1/artifacts/{theirs['sha256']}"


@pytest.fixture
def one_run(capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path) -> str:
    doc = run_cli(
        capsys,
        "generate", BRIEF, "--brand", str(ROOT / "examples/brands/acme-coffee.yaml"),
        "--n", "2", "--size", "256x256", "--seed", "11", "--no-memory",
        "--out", str(tmp_path / "out"), "--json",
    )  # fmt: skip
    assert doc["images"], doc["reason"]
    return str(doc["run_id"])


@pytest.fixture
def http(settings: Settings, db: Database) -> Any:
    with db.session() as session:
        _, key = create_key(session, tenant="default", role="viewer")
    app = create_app(settings, ApiSettings(workers=0), use_memory=False, database=db)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        yield client


def test_the_trace_reads_the_same_on_the_cli_and_over_http(
    capsys: pytest.CaptureFixture[str], one_run: str, http: TestClient
) -> None:
    cli = run_cli(capsys, "runs", "show", one_run, "--json")
    answer = http.get(f"/v1/runs/{one_run}/trace")
    assert answer.status_code == 200, answer.text
    over_http = answer.json()

    assert set(cli) == set(over_http) == set(RunTrace.model_fields)
    assert set(cli["run"]) == set(RunView.model_fields)
    assert cli["attempts"] and all(set(a) == set(AttemptView.model_fields) for a in cli["attempts"])
    assert all(set(e) == set(TraceEvent.model_fields) for e in cli["events"])
    assert len(cli["receipts"]) == len(cli["run"]["images"]) == 2

    image_paths = {f".run.images[{i}].path" for i in range(len(cli["run"]["images"]))}
    assert set(differences(cli, over_http)) == image_paths
    check_image_paths(cli["run"]["images"], over_http["run"]["images"])

    # what the trace endpoint used to lack, now there with the values the registry holds
    attempts = {a["id"]: a for a in over_http["attempts"]}
    for receipt in over_http["receipts"]:
        attempt = attempts[receipt["attempt_id"]]
        assert attempt["outcome"] == "accepted"
        for field in ("tries", "revised_prompt", "provider_request_id", "params"):
            assert attempt[field] == receipt[field], field
        assert attempt["tries"] >= 1
        assert attempt["composite"] == pytest.approx(receipt["composite"], abs=1e-3)
        assert attempt["scores"] == pytest.approx(receipt["scores"], abs=1e-3)
        assert attempt["scores"] and all(isinstance(v, float) for v in attempt["scores"].values())


def test_the_run_list_reads_the_same_on_the_cli_and_over_http(
    capsys: pytest.CaptureFixture[str], one_run: str, http: TestClient
) -> None:
    cli = run_cli(capsys, "runs", "list", "--json")
    over_http = http.get("/v1/runs").json()
    assert [r["run_id"] for r in cli] == [r["run_id"] for r in over_http] == [one_run]
    image_paths = {f"[0].images[{i}].path" for i in range(len(cli[0]["images"]))}
    assert set(differences(cli, over_http)) == image_paths
    assert http.get(f"/v1/runs/{one_run}").json() == over_http[0]


def _untyped(node: Any, path: str) -> list[str]:
    """Places in a JSON schema that admit any object or any value without saying what."""
    found = []
    if isinstance(node, dict):
        if node.get("additionalProperties") in (True, {}):
            found.append(path)
        if node.get("type") == "object" and not {"properties", "additionalProperties"} & set(node):
            found.append(path)
        for key, value in node.items():
            if key not in ("examples", "example", "default"):
                found += _untyped(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _untyped(value, f"{path}[{index}]")
    return found


def test_no_response_in_the_openapi_schema_hides_an_untyped_object(http: TestClient) -> None:
    doc = http.get("/openapi.json").json()
    untyped = []
    for route, operations in doc["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {}).get("application/json")
                if content is not None:
                    where = f"{method.upper()} {route} {status}"
                    assert content.get("schema"), f"{where} has no schema"
                    untyped += _untyped(content["schema"], where)
    for name, schema in doc["components"]["schemas"].items():
        if name != "JsonValue":  # free-form JSON (params, event payloads), named as such
            untyped += _untyped(schema, name)
    assert untyped == []
    attempt = doc["components"]["schemas"]["AttemptView"]["properties"]
    for field in ("tries", "revised_prompt", "provider_request_id", "params", "composite"):
        assert field in attempt
    assert attempt["scores"]["additionalProperties"] == {"type": "number"}


def test_brands_and_models_read_the_same_on_the_cli_and_over_http(
    capsys: pytest.CaptureFixture[str], one_run: str, http: TestClient
) -> None:
    for argv, path, model in (
        (("brands", "list", "--json"), "/v1/brands", BrandView),
        (("models", "list", "--json"), "/v1/models", ModelView),
    ):
        cli = run_cli(capsys, *argv)
        over_http = http.get(path).json()
        assert cli and differences(cli, over_http) == [], path
        assert all(set(item) == set(model.model_fields) for item in cli)
    models = {m["id"]: m for m in run_cli(capsys, "models", "list", "--json")}
    assert (
        models["procedural/draft"]["usable"]
        and models["procedural/draft"]["unusable_reason"] is None
    )
    assert not models["openai/gpt-image-1"]["usable"]
    assert models["openai/gpt-image-1"]["unusable_reason"] == "openai not configured"
