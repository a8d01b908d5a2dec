"""The job event stream's names: the code, docs/http-api.md ("Events") and the route's OpenAPI
description list one set, and a real stream sends nothing outside it."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pytest
from fastapi.testclient import TestClient

from brandloop.agent.context import TraceKind
from brandloop.api.auth import create_key
from brandloop.api.jobs.service import SSE_EVENTS, sse_name
from brandloop.domain import utcnow
from brandloop.registry.db import Database
from brandloop.registry.models_service import ApiKeyRow
from brandloop.settings import Settings
from tests.api.http.conftest import Keys, both_databases, brand_kit, wait_job

settings = pytest.fixture(name="settings")(both_databases)

DOC = Path(__file__).resolve().parents[3] / "docs" / "http-api.md"


def documented_events() -> list[str]:
    """The first column of the table in docs/http-api.md's "### Events" section."""
    section = DOC.read_text().split("### Events", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [re.match(r"\| `([a-z_]+)` \|", row).group(1) for row in rows]  # type: ignore[union-attr]


def test_the_names_the_stream_can_send_are_the_documented_ones(client: TestClient) -> None:
    can_send = {"state", "end"} | {
        sse_name(node, kind) for kind in get_args(TraceKind) for node in ("plan", "intake")
    }
    assert set(SSE_EVENTS) == can_send
    documented = documented_events()
    assert len(documented) == len(set(documented))
    assert documented == list(SSE_EVENTS)  # the same names, in the same order
    described = client.get("/openapi.json").json()["paths"]["/v1/jobs/{job_id}/events"]["get"]
    assert set(re.findall(r"`([a-z_]+)`:", described["description"])) == can_send


def test_a_real_stream_sends_only_documented_names(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    client = make_client(use_memory=True)  # so the run remembers, after `done`
    made = client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"])
    assert made.status_code == 201, made.text
    creator = keys["A", "creator"]
    job = client.post(
        "/v1/generations",
        json={"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256"},
        headers=creator,
    ).json()
    assert wait_job(client, job["id"], creator)["state"] == "succeeded"
    with client.stream("GET", f"/v1/jobs/{job['id']}/events", headers=creator) as stream:
        text = "".join(stream.iter_text())
    sent = re.findall(r"^event: (.+)$", text, flags=re.MULTILINE)
    assert set(sent) <= set(SSE_EVENTS), set(sent) - set(SSE_EVENTS)
    assert sent[0] == "state" and sent[-1] == "end"
    for name in ("planned", "moderation", "scored", "done", "remembered"):
        assert name in sent, (name, sent)
    assert sent.index("remembered") > sent.index("done")


def test_a_stream_ends_when_its_key_is_revoked(
    make_client: Callable[..., TestClient],
    keys: Keys,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key revoked while its event stream is open ends the stream at the next poll, with
    an `end` saying so and nothing more of the run: a revoked viewer key kept receiving the
    trace until the job ended (outside tester). The job waits for review here, so its own
    stream would never end."""
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    client = make_client()
    made = client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"])
    assert made.status_code == 201, made.text
    body = {"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256", "seed": 3}
    job = client.post("/v1/generations?wait=60", json=body, headers=keys["A", "creator"]).json()
    assert job["state"] == "awaiting_review", job
    db = Database(settings.resolved_database_url)
    with db.session() as session:
        row, key = create_key(session, tenant="A", role="viewer", principal="vic")
        key_id = row.id
    viewer = {"Authorization": f"Bearer {key}"}
    lines: list[str] = []

    def read() -> None:
        with client.stream("GET", f"/v1/jobs/{job['id']}/events", headers=viewer) as stream:
            assert stream.status_code == 200
            for line in stream.iter_lines():
                lines.append(line)
                if line == "event: scored":  # the trace is being sent: revoke the key now
                    with db.session() as session:
                        session.get(ApiKeyRow, key_id).revoked_at = utcnow()  # type: ignore[union-attr]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=60)  # the stream ends only at the revocation: the job never finishes
    db.dispose()
    assert not reader.is_alive(), f"the stream went on after the revocation: {lines[-6:]}"
    sent = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert sent[-1] == "end" and "scored" in sent, sent
    end = json.loads(lines[lines.index("event: end") + 1].removeprefix("data: "))
    assert end["error"]["type"] == "unauthorized" and "revoked" in end["error"]["detail"], end
    after = lines[lines.index("event: end") :]
    assert not any(line.startswith("id: ") for line in after), after  # nothing more of the run
