"""The job event stream's names: the code, docs/http-api.md ("Events") and the route's OpenAPI
description list one set, and a real stream sends nothing outside it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pytest
from fastapi.testclient import TestClient

from brandloop.agent.context import TraceKind
from brandloop.api.jobs.service import SSE_EVENTS, sse_name
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
