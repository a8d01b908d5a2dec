"""A key in a provider's base URL (``BRANDLOOP_OPENAI_BASE_URL=...?api_key=KEY``) is one of the
configured credentials (docs/http-api.md), so what the provider sends back is cleaned of it
as of the provider's own key: a server that repeats the request's path and query in its
revised prompt, its request id or a 400 message puts ``[redacted]`` into the stored run, the
receipt (registry, signed PNG, ``receipt.json``), the API's answers and the log, never the key
or a run of 8 of its characters; and the call goes to ``/v1/images/generations?api_key=KEY``.
On SQLite and PostgreSQL. Before, the key was stored and logged word for word (tester26d,
defects 1 and 2)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from brandloop.api.app import create_app
from brandloop.api.cli import main
from brandloop.api.config import ApiSettings
from brandloop.logs import JsonFormatter
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.http.conftest import Keys, brand_kit
from tests.databases import stored_anywhere
from tests.fakes.provider_server import FakeImagesApp, serve

ROOT = Path(__file__).resolve().parents[3]
OPENAI_KEY = "sk-test-urlcreds26-0123456789"
QUERY_KEY = "UrlQueryKey-555aaa"
#: the key whole, its first and its last 8 characters, and the bearer key
NEEDLES = (QUERY_KEY, QUERY_KEY[:8], QUERY_KEY[-8:], OPENAI_KEY)
SENT_TO = f"/v1/images/generations?api_key={QUERY_KEY}"


@pytest.fixture
def echoing_openai(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[FakeImagesApp]:
    """A fake OpenAI server that repeats each request's path and query in what it answers,
    configured with a key in the base URL's query; the CLI acts for tenant A."""
    fake = FakeImagesApp(api_key=OPENAI_KEY, render=True, echo_url=True)
    with serve(fake) as base_url:
        monkeypatch.setenv("BRANDLOOP_TENANT", "A")
        monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", OPENAI_KEY)
        monkeypatch.setenv("BRANDLOOP_OPENAI_BASE_URL", f"{base_url}?api_key={QUERY_KEY}")
        get_settings.cache_clear()
        yield fake
    get_settings.cache_clear()


@pytest.fixture
def provider_logs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """brandloop's records as the server's JSON log handler would see them (an earlier CLI
    call in this process may have stopped them from reaching the root logger)."""
    monkeypatch.setattr(logging.getLogger("brandloop"), "propagate", True)
    caplog.set_level(logging.INFO, logger="brandloop")
    return caplog


def _assert_clean(where: str, text: str) -> None:
    for needle in NEEDLES:
        assert needle not in text, (needle, where, text[:2000])


def test_a_key_in_the_base_urls_query_is_redacted_from_runs_receipts_answers_and_logs(
    echoing_openai: FakeImagesApp,
    provider_logs: pytest.LogCaptureFixture,
    settings: Settings,
    db: Database,
) -> None:
    fake = echoing_openai
    body = {
        "brief": "a steaming cup of coffee, warm morning light",
        "brand": "Acme Coffee",
        "size": "1024x1024",
        "model": "openai/gpt-image-1-mini",
        "budget_usd": 0.5,
        "seed": 1,
    }
    app = create_app(
        get_settings(),
        ApiSettings(workers=1, rate_limit_per_minute=100_000, rate_limit_burst=10_000),
        use_memory=False,
        database=db,
    )
    answers: dict[str, str] = {}
    with TestClient(app, raise_server_exceptions=False) as client:
        keys = Keys(db)
        admin, creator = keys["A", "admin"], keys["A", "creator"]
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).is_success
        done = client.post("/v1/generations?wait=60", json=body, headers=creator)
        fake.faults.append("echo_url")  # the next call: a 400 repeating the request's URL
        failed = client.post(
            "/v1/generations?wait=60",
            json={**body, "brief": "a teapot on a wooden table", "seed": 2},
            headers=creator,
        )
        for name, answer in (("succeeded", done), ("failed", failed)):
            assert answer.status_code == 200, answer.text
            run_id = answer.json()["run_id"]
            answers[f"{name} job"] = answer.text
            answers[f"{name} run"] = client.get(f"/v1/runs/{run_id}", headers=creator).text
            answers[f"{name} trace"] = client.get(f"/v1/runs/{run_id}/trace", headers=creator).text

    assert [r["target"] for r in fake.requests] == [SENT_TO, SENT_TO], "the query was not kept"
    trace = json.loads(answers["succeeded trace"])
    (revised,) = {a["revised_prompt"] for a in trace["attempts"]}
    assert revised.endswith("(sent to /v1/images/generations?api_key=[redacted])"), revised
    errors = [a["error"] for a in json.loads(answers["failed trace"])["attempts"]]
    assert errors and all("bad url /v1/images/generations?api_key=[redacted]" in e for e in errors)
    for where, text in answers.items():
        _assert_clean(where, text)
    assert json.loads(answers["succeeded run"])["images"], "no image: no receipt was written"
    for needle in NEEDLES:
        assert stored_anywhere(db, needle, settings.data_dir) == [], needle
    calls = [r for r in provider_logs.records if r.name == "brandloop.agent.context"]
    assert any("[redacted]" in r.getMessage() for r in calls), [r.getMessage() for r in calls]
    formatter = JsonFormatter()
    for record in provider_logs.records:
        _assert_clean(f"log {record.name}", formatter.format(record))


def test_the_cli_writes_receipt_json_without_the_key_of_the_base_url(
    echoing_openai: FakeImagesApp,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    db: Database,
    tmp_path: Path,
) -> None:
    out_dir = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(
            ["generate", "a cup of black coffee", "--brand",
             str(ROOT / "examples/brands/acme-coffee.yaml"), "--model", "openai/gpt-image-1-mini",
             "--size", "1024x1024", "--budget", "0.3", "--out", str(out_dir), "--json"]
        )  # fmt: skip
    out, err = capsys.readouterr()
    assert json.loads(out)["images"], (exc.value.code, err)
    assert [r["target"] for r in echoing_openai.requests] == [SENT_TO]
    receipt = (out_dir / "receipt.json").read_text()
    assert "api_key=[redacted]" in receipt, receipt[:2000]
    for path in out_dir.rglob("*"):
        if path.is_file():
            _assert_clean(str(path), path.read_bytes().decode("latin-1"))
    _assert_clean("stdout", out)
    _assert_clean("stderr", err)
    # Chroma's index files are left out: hnswlib writes its index's unused capacity from
    # memory it never cleared, which may hold any string this test process has held
    # (the environment's key too), whatever the run stored.
    files = [p for p in settings.data_dir.rglob("*") if p.is_file() and "chroma" not in p.parts]
    for needle in NEEDLES:
        assert stored_anywhere(db, needle) == [], needle
        assert [str(p) for p in files if needle.encode() in p.read_bytes()] == [], needle
