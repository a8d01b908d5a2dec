"""Human review: a policy interrupts the run, `review approve|reject` resumes it, the audit log
records who decided and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandloop.agent.runner import resume_run, review_run, run_generation
from brandloop.api.cli import main
from brandloop.domain import GenerationRequest
from brandloop.errors import BadInputError
from brandloop.policies.agent import AgentPolicy, ReviewPolicy
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.agent.helpers import AUTUMN, CountingProvider, add_acme

ALWAYS = AgentPolicy(review=ReviewPolicy(mode="always"))


def _request(brand: str, seed: int) -> GenerationRequest:
    return GenerationRequest(brief=AUTUMN, brand=brand, count=1, size="128x128", seed=seed)


async def test_review_interrupts_and_approve_delivers(
    settings: Settings, db: Database, seed: int
) -> None:
    brand = add_acme(settings, db)
    provider = CountingProvider()
    waiting = await run_generation(
        _request(brand, seed),
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
        policy=ALWAYS,
    )
    assert waiting.status == "awaiting_review" and waiting.images == []
    assert any(d.action == "request_review" for d in waiting.decisions)
    with db.session() as session:
        row = crud.get_run(session, tenant="default", run_id=waiting.run_id)
        assert row is not None and row.status == "awaiting_review" and row.result is None
    calls = len(provider.calls)

    still = await resume_run(
        waiting.run_id, settings=settings, db=db, providers={"procedural": provider}
    )
    assert still.status == "awaiting_review", "resume without an answer keeps waiting"

    done = await review_run(
        waiting.run_id,
        settings=settings,
        db=db,
        decision="approve",
        note="on brand",
        actor="ann",
        providers={"procedural": provider},
        use_memory=False,
    )
    assert done.status == "succeeded" and len(done.images) == 1
    assert len(provider.calls) == calls, "approving pays for nothing"
    assert any(d.action == "approved" and "ann" in d.reason for d in done.decisions)
    with db.session() as session:
        entries = crud.list_audit(session, tenant="default", subject_id=waiting.run_id)
        assert [(e.action, e.actor, e.detail) for e in entries] == [
            ("run.review.approve", "ann", {"note": "on brand"})
        ]
    with pytest.raises(BadInputError, match="not awaiting review"):
        await review_run(waiting.run_id, settings=settings, db=db, decision="reject")


async def test_reject_delivers_nothing(settings: Settings, db: Database, seed: int) -> None:
    brand = add_acme(settings, db)
    provider = CountingProvider()
    waiting = await run_generation(
        _request(brand, seed),
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
        policy=ALWAYS,
    )
    done = await review_run(
        waiting.run_id,
        settings=settings,
        db=db,
        decision="reject",
        note="too orange",
        providers={"procedural": provider},
        use_memory=False,
    )
    assert done.status == "failed" and done.images == []
    assert "too orange" in done.reason
    with db.session() as session:
        attempts = crud.list_attempts(session, run_id=waiting.run_id)
        assert all(a.outcome != "accepted" for a in attempts)


async def test_below_score_and_unapproved_template_policies(
    settings: Settings, db: Database, seed: int
) -> None:
    brand = add_acme(settings, db)
    high_band = AgentPolicy(review=ReviewPolicy(mode="below_score", score_band=1.0))
    result = await run_generation(
        _request(brand, seed),
        settings=settings,
        db=db,
        providers={"procedural": CountingProvider()},
        use_memory=False,
        policy=high_band,
    )
    assert result.status == "awaiting_review"
    low_band = AgentPolicy(review=ReviewPolicy(mode="below_score", score_band=0.0))
    result = await run_generation(
        _request(brand, seed),
        settings=settings,
        db=db,
        providers={"procedural": CountingProvider()},
        use_memory=False,
        policy=low_band,
    )
    assert result.status == "succeeded"
    approved_only = AgentPolicy(
        brand_review={"acme-coffee": ReviewPolicy(mode="unapproved_template")}
    )
    result = await run_generation(
        _request(brand, seed),
        settings=settings,
        db=db,
        providers={"procedural": CountingProvider()},
        use_memory=False,
        policy=approved_only,
    )
    assert result.status == "succeeded", "the shipped template is approved"


def test_review_from_the_cli(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text("review: {mode: always}\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    brand_path = str(Path(__file__).resolve().parents[2] / "examples/brands/acme-coffee.yaml")
    with pytest.raises(SystemExit) as exc:
        main(
            ["generate", AUTUMN, "--brand", brand_path, "--size", "128x128", "--seed", str(seed),
             "--no-memory", "--json", "--out", str(tmp_path / "out")]
        )  # fmt: skip
    assert exc.value.code == 0
    import json

    waiting = json.loads(capsys.readouterr().out)
    assert waiting["status"] == "awaiting_review"
    with pytest.raises(SystemExit) as exc:
        main(["review", "approve", waiting["run_id"], "--note", "ok", "--json"])
    assert exc.value.code == 0
    approved = json.loads(capsys.readouterr().out)
    assert approved["status"] == "succeeded" and approved["images"]
    with pytest.raises(SystemExit) as exc:
        main(["review", "reject", waiting["run_id"], "--note", "too late"])
    assert exc.value.code == 2
    assert "not awaiting review" in capsys.readouterr().err


def test_a_run_waiting_for_review_in_text_mode_exits_0_and_every_view_shows_its_cost(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
) -> None:
    """Waiting for review is a normal stop: the table says what was accepted, what it cost and
    how to answer, exit 0 as with --json; runs list, runs show and the JSON agree on the cost
    while the run waits (the run's row is written when it stops for review, not only at the end)."""
    import json

    policy = tmp_path / "agent.yaml"
    policy.write_text("review: {mode: always}\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    monkeypatch.setenv("COLUMNS", "200")
    brand_path = str(Path(__file__).resolve().parents[2] / "examples/brands/acme-coffee.yaml")
    with pytest.raises(SystemExit) as exc:
        main(
            ["generate", AUTUMN, "--brand", brand_path, "--size", "128x128", "--seed", str(seed),
             "--no-memory", "--out", str(tmp_path / "out")]
        )  # fmt: skip
    text = capsys.readouterr()
    assert exc.value.code == 0, text.err
    assert "has not finished" not in text.err
    with pytest.raises(SystemExit):
        main(["runs", "list", "--json"])
    [listed] = json.loads(capsys.readouterr().out)
    run_id = listed["run_id"]
    assert listed["status"] == "awaiting_review"
    with pytest.raises(SystemExit):
        main(["runs", "show", run_id, "--json"])
    trace = json.loads(capsys.readouterr().out)
    paid = round(sum(a["cost_usd"] for a in trace["attempts"]), 6)
    accepted = [a for a in trace["attempts"] if a["outcome"] == "accepted"]
    assert paid > 0 and accepted
    assert trace["run"] == listed
    assert (listed["cost_usd"], listed["attempts"], listed["accepted"]) == (
        paid,
        len(trace["attempts"]),
        len(accepted),
    )
    assert listed["template"] == accepted[0]["template"] != ""
    header = text.out.splitlines()[0]
    assert f"{run_id}  awaiting_review  {len(accepted)} accepted, waiting for review" in header
    assert f"{len(trace['attempts'])} attempts, ${paid:.3f}" in header
    assert f"brandloop review approve {run_id}" in text.out
    assert accepted[0]["id"].split("-", 1)[-1] in text.out
    with pytest.raises(SystemExit):
        main(["runs", "list"])
    assert f"${paid:.3f}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["runs", "show", run_id])
    shown = capsys.readouterr().out
    assert f"{len(accepted)} accepted of {len(trace['attempts'])} attempts, ${paid:.3f}" in shown
    assert f"template {listed['template']}" in shown
