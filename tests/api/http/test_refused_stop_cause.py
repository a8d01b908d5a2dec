"""Through the real app, on SQLite and PostgreSQL: a run refused before spending (the brand's
conflict policy refuses or asks, a brief names a forbidden brand term) stops short as
``refused``: the job's ``result.stop_cause`` says so (docs/agent.md: ``null`` only when a run
did not stop short). Before session 23 it was ``null``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.settings import Settings
from tests.api.http.conftest import Keys, both_databases, wait_job

settings = pytest.fixture(both_databases)


@pytest.mark.parametrize(
    ("policy", "brief"),
    [
        ("conflicts: refuse\n", "a coffee cup on a fuchsia tablecloth"),
        ("conflicts: ask\n", "a coffee cup on a pastel pink tablecloth"),
        (None, "instant coffee in a cup"),  # a forbidden brand term, refused at intake
    ],
)
def test_a_job_whose_run_was_refused_before_spending_says_stop_cause_refused(
    client: TestClient,
    keys: Keys,
    acme: dict[str, Any],
    settings: Settings,
    policy: str | None,
    brief: str,
) -> None:
    if policy is not None:
        folder = settings.data_dir / "policies"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "acme-coffee.yaml").write_text(policy, encoding="utf-8")
    creator = keys["A", "creator"]
    posted = client.post(
        "/v1/generations",
        json={"brief": brief, "brand": "Acme Coffee", "size": "256x256", "seed": 5},
        headers=creator,
    )
    assert posted.status_code == 202, posted.text
    job = wait_job(client, posted.json()["id"], creator)
    result = job["result"]
    assert job["state"] == "failed" and job["error"]["type"] == "refused", job
    assert result["status"] == "refused" and result["cost_usd"] == 0 and result["attempts"] == 0
    assert result["stop_cause"] == "refused", result
