"""A brief is at most 4,000 characters as it is stored and run, which is after its personal data
is replaced by ``[redacted <kind>]`` markers (each may be longer than what it replaces) and after
a thread's follow-up is applied. Past the limit it is a 422 ``validation`` naming the caller's
field, with nothing stored; the brief is never cut. A job whose stored request cannot run all the
same (a row from before these checks) fails saying why, releasing its quota hold, and never
stays queued (an outside tester's report: such a job stayed queued through restarts, holding its
budget, its event stream never ending)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.agent.revision import MAX_AVOID, BriefState, apply_rules
from brandloop.api.jobs import store
from brandloop.api.jobs.service import admit
from brandloop.domain import MAX_BRIEF_CHARS
from brandloop.registry.db import Database
from tests.api.http.conftest import Keys, assert_problem, wait_job

EMAIL = "contact jo@ex.io"  # 16 characters; stored as "contact [redacted email]" (24)


def _padded(total: int, tail: str = EMAIL) -> str:
    """A brief of ``total`` characters ending with ``tail``."""
    filler = ("a cup of coffee on an oak table in morning light, " * 100)[: total - len(tail) - 1]
    return f"{filler} {tail}"


def _field(problem: dict[str, Any]) -> list[str]:
    errors = problem["errors"]
    assert len(errors) == 1, errors
    loc: list[str] = errors[0]["loc"]
    return loc


def _jobs(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    listed = client.get("/v1/jobs", headers=headers)
    assert listed.status_code == 200, listed.text
    jobs: list[dict[str, Any]] = listed.json()
    return jobs


def test_a_brief_the_redaction_takes_past_the_limit_is_refused_naming_its_field(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    creator = keys["A", "creator"]
    brief = _padded(3998)
    assert len(brief) == 3998 and brief.endswith(EMAIL)
    refused = client.post(
        "/v1/generations",
        json={"brand": "Acme Coffee", "brief": brief, "budget_usd": 1},
        headers=creator,
    )
    problem = assert_problem(refused, 422, "validation")
    assert _field(problem) == ["body", "brief"]
    assert "4006 characters once its personal data is replaced" in problem["errors"][0]["msg"]
    assert "jo@ex.io" not in refused.text
    # the same brief without the address's growth fits, and runs
    fits = client.post(
        "/v1/generations",
        json={"brand": "Acme Coffee", "brief": _padded(3990), "budget_usd": 1},
        headers=creator,
    )
    assert fits.status_code == 202, fits.text
    assert wait_job(client, fits.json()["id"], creator)["state"] == "succeeded"
    assert [job["id"] for job in _jobs(client, creator)] == [fits.json()["id"]]

    campaign = client.post(
        "/v1/campaigns",
        json={
            "brand": "Acme Coffee",
            "name": "spring",
            "budget_usd": 1,
            "assets": [{"brief": "a cup"}, {"brief": brief}],
        },
        headers=creator,
    )
    assert _field(assert_problem(campaign, 422, "validation")) == ["body", "assets", "1", "brief"]

    thread = client.post(
        "/v1/threads",
        json={"brand": "Acme Coffee", "title": "t", "message": brief},
        headers=creator,
    )
    assert _field(assert_problem(thread, 422, "validation")) == ["body", "message"]
    assert client.get("/v1/threads", headers=creator).json() == []  # no thread left behind
    assert client.get("/v1/campaigns", headers=creator).json() == []
    assert len(_jobs(client, creator)) == 1


def test_a_follow_up_that_takes_the_brief_past_the_limit_is_refused_not_cut(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    creator = keys["A", "creator"]
    started = client.post(
        "/v1/threads",
        json={"brand": "Acme Coffee", "title": "t", "message": _padded(3999, "a cup"), "seed": 4},
        headers=creator,
    )
    assert started.status_code == 201, started.text
    thread = started.json()
    wait_job(client, thread["messages"][0]["job"]["id"], creator)

    message = client.post(
        f"/v1/threads/{thread['id']}/messages",
        json={"content": "add steam rising from the cup"},
        headers=creator,
    )
    problem = assert_problem(message, 422, "validation")
    assert _field(problem) == ["body", "content"]
    assert "the brief this follow-up makes is" in problem["errors"][0]["msg"]
    as_generation = client.post(
        "/v1/generations",
        json={"brand": "Acme Coffee", "brief": "add a spoon", "thread_id": thread["id"]},
        headers=creator,
    )
    assert _field(assert_problem(as_generation, 422, "validation")) == ["body", "brief"]
    stored = client.get(f"/v1/threads/{thread['id']}", headers=creator).json()
    assert len(stored["messages"]) == 1  # nothing of either follow-up was kept
    assert len(_jobs(client, creator)) == 1

    # a follow-up that removes something still fits, and runs
    shorter = client.post(
        f"/v1/threads/{thread['id']}/messages",
        json={"content": "drop the oak table"},
        headers=creator,
    )
    assert shorter.status_code == 202, shorter.text
    assert len(shorter.json()["message"]["brief"]) <= MAX_BRIEF_CHARS


def test_a_thread_keeps_the_most_recent_avoided_terms() -> None:
    fruits = [f"fruit{i}" for i in range(MAX_AVOID)]
    state = BriefState(brief="a bowl of " + ", ".join(fruits) + " and a spoon", avoid=[], shifts=[])
    first = apply_rules(state, "remove the " + ", the ".join(fruits))
    assert first.avoid == fruits
    second = apply_rules(first.state(), "drop the spoon")
    assert second.removed == ["spoon"]
    assert second.avoid == [*fruits[1:], "spoon"]  # the newest kept, the oldest let go
    assert "spoon" not in second.after


@pytest.fixture
def stored_unrunnable(db: Database, acme: dict[str, Any]) -> str:
    """A queued job whose request no release would accept now (a brief past the limit), stored
    as an older release could have stored it."""
    with db.session() as session:
        job = store.create_job(
            session,
            tenant="A",
            kind="generation",
            request={
                "brand": "Acme Coffee",
                "brief": "x" * (MAX_BRIEF_CHARS + 6),
                "tenant": "A",
                "budget_usd": 7.0,
            },
        )
        admit(session, tenant="A", quota_usd=10, budget_usd=7.0, run_id=job.run_id, job_id=job.id)
        session.commit()
        return job.id


def test_a_stored_request_that_cannot_run_fails_its_job_and_releases_its_hold(
    make_client: Callable[..., TestClient], keys: Keys, stored_unrunnable: str
) -> None:
    creator = keys["A", "creator"]
    client = make_client(daily_quota_usd=10)  # the pool starts: it picks up the queued job
    job = wait_job(client, stored_unrunnable, creator, timeout=30)
    assert job["state"] == "failed"
    assert job["error"]["status"] == 422
    assert "the job's request cannot run: brief: " in job["error"]["detail"]
    assert "4006 characters" in job["error"]["detail"]
    assert "xxxx" not in str(job["error"])  # the rule, never the value
    # its $7 hold is released: another $7 fits the $10 quota
    again = client.post(
        "/v1/generations",
        json={"brand": "Acme Coffee", "brief": "a cup", "budget_usd": 7},
        headers=creator,
    )
    assert again.status_code == 202, again.text
