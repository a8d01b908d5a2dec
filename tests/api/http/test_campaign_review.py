"""A campaign whose assets wait for review is not done: it is `awaiting_review` until its last
review ends, and its consistency is measured then, over what the reviews delivered, whether the
last verdict approves, rejects, or is one a stalled process left and a service finished on its
own. (A campaign once said `done` with its assets still waiting, and kept `images: 0` after
they were approved.) The stalled verdict is held as ``test_review_claims`` holds one, with its
fixtures; its ``short_lease`` is this module's ``settings`` (a 1 s review lease, renewed while a
verdict is applied)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.api.jobs.store import FINAL_STATES
from brandloop.registry import spend
from brandloop.registry.db import Database
from tests.api.http.conftest import Keys, brand_kit
from tests.api.http.test_review_claims import (  # noqa: F401  (fixtures)
    CommitGate,
    _letting_go,
    _stall_a_verdict,
    claims_the_run,
    gate,
    replica,
    short_lease,
)
from tests.api.studio.conftest import csrf_of

ROOT = Path(__file__).resolve().parents[3]
AUTUMN = {
    "name": "Autumn",
    "brand": "Acme Coffee",
    "budget_usd": 0.3,
    "assets": [{"brief": "hero cup", "formats": ["128x128", "1:1"], "count": 1}],
}


@pytest.fixture
def acme_reviewed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Brand review "always" for Acme Coffee: the agent's default policy plus that line."""
    defaults = (ROOT / "policies" / "agent_defaults.yaml").read_text(encoding="utf-8")
    policy = tmp_path / "agent.yaml"
    policy.write_text(
        defaults + "\nbrand_review:\n  acme-coffee:\n    mode: always\n", encoding="utf-8"
    )
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))


def _waiting_campaign(client: TestClient, keys: Keys) -> dict[str, Any]:
    """Autumn, started and left with every asset waiting for review."""
    added = client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"])
    assert added.status_code == 201, added.text
    creator = keys["A", "creator"]
    created = client.post("/v1/campaigns", json=AUTUMN, headers=creator)
    assert created.status_code == 202, created.text
    campaign_id = created.json()["id"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/campaigns/{campaign_id}", headers=creator).json()
        if body["progress"]["awaiting_review"] == len(body["assets"]):
            return body
        assert not body["progress"]["failed"], body
        time.sleep(0.2)
    raise AssertionError(f"campaign {campaign_id} never waited for review: {body}")


def _campaign(client: TestClient, keys: Keys, campaign_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(
        f"/v1/campaigns/{campaign_id}", headers=keys["A", "viewer"]
    ).json()
    return body


def _studio_page(client: TestClient, keys: Keys, path: str) -> str:
    """``path`` of the studio, as a viewer signed in with a key sees it."""
    browser = TestClient(client.app, raise_server_exceptions=False)
    browser.portal = client.portal  # requests run on the app's own loop
    key = keys["A", "viewer"]["Authorization"].removeprefix("Bearer ")
    signin = browser.get("/signin")
    signed = browser.post(
        "/signin", data={"key": key, "csrf": csrf_of(signin.text)}, follow_redirects=False
    )
    assert signed.status_code == 303, signed.text
    page = browser.get(path)
    assert page.status_code == 200, page.text
    return page.text


def _delivered(campaign: dict[str, Any]) -> int:
    return sum(len((a["job"]["result"] or {}).get("images", [])) for a in campaign["assets"])


def test_a_campaign_waits_for_its_last_review_then_measures_what_was_approved(
    client: TestClient, keys: Keys, acme_reviewed: None
) -> None:
    campaign = _waiting_campaign(client, keys)
    cid = campaign["id"]
    assert campaign["state"] == "awaiting_review", campaign
    assert campaign["consistency"] is None
    waiting = _studio_page(client, keys, f"/campaigns/{cid}")
    assert "awaiting review" in waiting and "measured once the last review ends" in waiting
    runs = [a["job"]["run_id"] for a in campaign["assets"]]
    lee = keys.of("A", "lee", "approver")
    ok = client.post(f"/v1/review/runs/{runs[0]}", json={"decision": "approve", "note": "ok"},
                     headers=lee)  # fmt: skip
    assert ok.status_code == 200, ok.text
    half = _campaign(client, keys, cid)
    assert half["state"] == "awaiting_review" and half["consistency"] is None, half
    ok = client.post(f"/v1/review/runs/{runs[1]}", json={"decision": "approve", "note": "ok"},
                     headers=lee)  # fmt: skip
    assert ok.status_code == 200, ok.text
    done = _campaign(client, keys, cid)
    assert done["state"] == "done" and done["progress"]["succeeded"] == 2, done
    assert _delivered(done) == 2
    spread = done["consistency"]
    assert spread["images"] == 2, spread
    assert 0 <= spread["palette_spread"] <= 1 and spread["descriptor_spread"] >= 0
    # the studio says the same
    assert "Consistency over 2 image(s)" in _studio_page(client, keys, f"/campaigns/{cid}")
    # awaiting_review is a documented state of the schema
    schema = client.get("/openapi.json").json()["components"]["schemas"]["CampaignPublic"]
    assert "awaiting_review" in str(schema["properties"]["state"]), schema["properties"]["state"]


def test_a_campaign_waiting_for_review_counts_what_it_spent_against_the_quota(
    client: TestClient, keys: Keys, acme_reviewed: None, db: Database
) -> None:
    """docs/http-api.md: a job or campaign waiting for review counts what it spent against the
    daily quota, not its whole budget (a review calls no provider)."""
    campaign = _waiting_campaign(client, keys)
    spent = sum(a["job"]["cost_usd"] for a in campaign["assets"])
    assert 0 < spent < AUTUMN["budget_usd"]
    with db.session() as session:
        assert spend.quota_used(session, tenant="A") == pytest.approx(spent)


def test_a_campaign_whose_last_review_rejects_is_done_over_what_was_approved(
    client: TestClient, keys: Keys, acme_reviewed: None
) -> None:
    campaign = _waiting_campaign(client, keys)
    runs = [a["job"]["run_id"] for a in campaign["assets"]]
    lee, adm = keys.of("A", "lee", "approver"), keys.of("A", "adm", "admin")
    verdicts = [
        (lee, runs[0], {"decision": "approve", "note": "ok"}),
        (adm, runs[1], {"decision": "reject", "note": "too dark"}),
    ]
    with ThreadPoolExecutor(2) as pool:  # the two verdicts at once
        answers = list(
            pool.map(
                lambda v: client.post(f"/v1/review/runs/{v[1]}", json=v[2], headers=v[0]),
                verdicts,
            )
        )
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    done = _campaign(client, keys, campaign["id"])
    assert done["state"] == "done", done
    assert done["progress"]["succeeded"] == 1 and done["progress"]["failed"] == 1, done
    assert done["consistency"] == {"images": 1, "palette_spread": None, "descriptor_spread": None}


def test_a_campaign_is_done_when_a_service_finishes_a_stalled_verdict_on_its_own(
    make_client: Callable[..., TestClient],
    replica: Callable[..., TestClient],  # noqa: F811
    keys: Keys,
    gate: CommitGate,  # noqa: F811
    acme_reviewed: None,
) -> None:
    first = make_client()
    campaign = _waiting_campaign(first, keys)
    runs = [a["job"]["run_id"] for a in campaign["assets"]]
    lee = keys.of("A", "lee", "approver")
    # the gate holds the claim of the second asset's verdict only
    gate.watch = lambda statement, values: claims_the_run(statement, values) and runs[1] in values
    ok = first.post(f"/v1/review/runs/{runs[0]}", json={"decision": "approve", "note": "ok"},
                    headers=lee)  # fmt: skip
    assert ok.status_code == 200, ok.text
    with ThreadPoolExecutor(1) as pool, _letting_go(gate):
        stalled = _stall_a_verdict(
            pool, first, f"/v1/review/runs/{runs[1]}", {"decision": "approve", "note": "ok"},
            lee, gate,
        )  # fmt: skip
        second = replica(lease_s=600)  # a service started now finishes the verdict
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen = _campaign(second, keys, campaign["id"])
            if all(a["job"]["state"] in FINAL_STATES for a in seen["assets"]):
                break
            assert seen["state"] != "done", seen  # never done while a verdict is pending
            time.sleep(0.2)
        done = _campaign(second, keys, campaign["id"])
        gate.go.set()
        stalled.result(timeout=60)
    assert done["state"] == "done" and done["progress"]["succeeded"] == 2, done
    assert done["consistency"]["images"] == 2 == _delivered(done), done
