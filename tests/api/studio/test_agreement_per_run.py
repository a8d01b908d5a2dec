"""Judge agreement labels an image as a run made it: two runs can make the same bytes (a
remembered or given seed reproduces them, and images are content-addressed), and each run's
verdict is its own, under its own run, reviewer and note."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from brandloop.api.auth import create_key
from brandloop.registry.models import AttemptRow
from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio


@pytest.fixture
def acme_reviewed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Brand review "always" for Acme Coffee, as the agent's default policy plus one line."""
    defaults = Path(__file__).resolve().parents[3] / "policies" / "agent_defaults.yaml"
    policy = tmp_path / "agent.yaml"
    policy.write_text(
        defaults.read_text(encoding="utf-8")
        + "\nbrand_review:\n  acme-coffee:\n    mode: always\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))


def _key(studio: Studio, principal: str, role: str) -> str:
    with studio.db.session() as session:
        _, key = create_key(session, tenant="A", role=role, principal=principal)
    return key


def _accepted(studio: Studio, run_id: str) -> set[str]:
    with studio.db.session() as session:
        return {
            str(sha)
            for sha in session.scalars(
                select(AttemptRow.artifact_sha256).where(
                    AttemptRow.run_id == run_id,
                    AttemptRow.outcome == "accepted",
                    AttemptRow.artifact_sha256.is_not(None),
                )
            )
        }


def test_one_image_approved_in_one_run_and_rejected_in_another_is_two_labels(
    studio: Studio, api: Callable[..., Any], acme_reviewed: None
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    creator = studio.key("A", "creator")
    runs = []
    for _ in range(2):
        job = api(
            "POST",
            "/v1/generations?wait=60",
            creator,
            json={"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256",
                  "seed": 4242},
        ).json()  # fmt: skip
        assert job["state"] == "awaiting_review", job
        runs.append(str(job["run_id"]))
    run_a, run_b = runs
    same = _accepted(studio, run_a)
    assert same and same == _accepted(studio, run_b), "the same seed made other bytes"
    lee, adm = _key(studio, "lee", "approver"), _key(studio, "adm", "admin")
    verdicts = [
        (lee, run_a, {"decision": "approve", "note": "good"}),
        (adm, run_b, {"decision": "reject", "note": "too dark"}),
    ]
    with ThreadPoolExecutor(2) as pool:  # the two verdicts at once
        answers = list(
            pool.map(lambda v: api("POST", f"/v1/review/runs/{v[1]}", v[0], json=v[2]), verdicts)
        )
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]

    report = api("GET", "/v1/review/agreement", studio.key("A", "viewer")).json()
    figure = report["overall"]
    # run A's approval labels its images (the rule agreed); run B's rejection labels its own
    assert figure["labelled"] == 2 * len(same), figure
    assert figure["both_accept"] == len(same) and figure["rule_only"] == len(same), figure
    assert report["sources"] == {"rubric": 0, "run_review": 2 * len(same)}
    listed = {(d["run_id"], d["sha256"]): d for d in report["disagreements"]}
    assert set(listed) == {(run_b, sha) for sha in same}, listed
    for found in listed.values():
        assert found["notes"] == ["adm (run review): too dark"], found
        assert found["rule_accepts"] and not found["people_accept"]
    page = studio.signed_in_as("A", "vic", "viewer").get("/agreement").text
    assert run_b in page and "adm (run review): too dark" in page
    assert "lee (run review)" not in page
