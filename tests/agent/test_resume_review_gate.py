"""A run stopped at plan with an image accepted, its process killed before the run went on,
resumes through the review gate: ``brandloop runs resume`` leaves it waiting for review (brand
review mode ``always``), delivering nothing, and ``brandloop review approve`` delivers it.

Two checkpoints are resumed: one the current graph wrote (plan's stop routed to
``review_gate``), and one as a release older than the review gate on every exit left it (plan's
stop routed straight to ``finalize``: resumed as it was, its image went out unreviewed). Each
is written by a process that drives the graph up to that edge and stops there, as a SIGKILL
between the two nodes leaves it (the checkpoint after plan, the next node not yet run). The
images come from tests/fakes/one_accepted.py (one good image, then only off-palette ones) and
a stopping rule so strict that round two is never worth its price. Both databases.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Literal

import pytest
from langgraph.graph import END, START, StateGraph

from brandloop.agent import runner
from brandloop.agent.checkpoints import checkpointer_for
from brandloop.agent.context import RunContext
from brandloop.agent.graph import build_graph, compile_graph
from brandloop.agent.nodes.intake import redacted_request
from brandloop.agent.routers import after_intake, after_observe, after_preflight
from brandloop.agent.state import RunInput, RunState
from brandloop.domain import GenerationRequest
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.test_cli import run_cli
from tests.fakes.one_accepted import one_accepted_provider

ROOT = Path(__file__).resolve().parents[2]
ACME = str(ROOT / "examples" / "brands" / "acme-coffee.yaml")
POLICY = "brand_review: {acme-coffee: {mode: always}}\nstop_cost_multiple: 0.0001\n"


def older_graph() -> StateGraph[RunState, RunContext, RunInput, RunState]:
    """The loop as the release before b59a537 wired it: plan's stop went to ``finalize``
    whatever had been accepted. The nodes are today's; only plan's way out differs."""

    def after_plan(state: RunState) -> Literal["generate", "finalize"]:
        return "generate" if state.get("candidates") else "finalize"

    def after_review_gate(state: RunState) -> Literal["review", "finalize"]:
        return "review" if state.get("status") == "awaiting_review" else "finalize"

    current = build_graph()
    graph = StateGraph(RunState, context_schema=RunContext, input_schema=RunInput)
    for name, spec in current.nodes.items():
        graph.add_node(name, spec.runnable)
    graph.add_edge(START, "intake")
    graph.add_conditional_edges("intake", after_intake)
    graph.add_conditional_edges("preflight", after_preflight)
    graph.add_edge("recall", "plan")
    graph.add_conditional_edges("plan", after_plan)
    graph.add_edge("generate", "moderate")
    graph.add_edge("moderate", "score")
    graph.add_edge("score", "observe")
    graph.add_conditional_edges("observe", after_observe)
    graph.add_conditional_edges("review_gate", after_review_gate)
    graph.add_edge("review", "finalize")
    graph.add_edge("finalize", "remember")
    graph.add_edge("remember", END)
    return graph


@pytest.fixture
def reviewed_brand(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Settings:
    policy = tmp_path / "agent.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    monkeypatch.setenv(
        "BRANDLOOP_PROVIDER_PLUGINS", "tests.fakes.one_accepted:one_accepted_provider"
    )
    get_settings.cache_clear()
    assert run_cli(capsys, "brands", "add", ACME)[0] == 0
    return get_settings()


async def stopped_after_plan(
    settings: Settings, db: Database, request: GenerationRequest, *, older: bool
) -> tuple[str, tuple[str, ...]]:
    """A process that starts the run as ``run_generation`` does and is gone once plan has
    stopped the loop (the checkpoint after plan written, the next node not run). Returns the
    run id and the next node the checkpoint names."""
    run_id = runner.new_run_id()
    runner.check_request(db, request, run_id=run_id)
    request = redacted_request(request)
    ctx = runner.build_context(
        settings, db, request, providers={"procedural": one_accepted_provider()}, use_memory=False
    )
    with db.session() as session:
        brand = crud.get_brand(session, tenant=request.tenant, ref=request.brand)
        assert brand is not None
        crud.create_run(
            session,
            run_id=run_id,
            tenant=request.tenant,
            brand_id=brand.id,
            brand_name=brand.name,
            brief=request.brief,
            request=request.model_dump(mode="json"),
            campaign_id=None,
            thread_id=None,
        )
    config = runner._config(run_id)
    async with checkpointer_for(db.url, settings.checkpoints_path) as saver:
        graph = older_graph().compile(checkpointer=saver) if older else compile_graph(saver)
        await graph.ainvoke(
            {"run_id": run_id, "request": request},
            config,
            context=ctx,
            interrupt_before=["review_gate", "finalize"],
        )
        snapshot = await graph.aget_state(config)
        previous = [s async for s in graph.aget_state_history(config, limit=2)][1]
    assert previous.next == ("plan",), previous.next  # the stop was plan's
    assert len(snapshot.values["accepted"]) == 1, snapshot.values["accepted"]
    return run_id, snapshot.next


@pytest.mark.parametrize("older", [False, True], ids=["current-checkpoint", "older-checkpoint"])
def test_a_run_killed_after_plans_stop_resumes_into_review_and_delivers_nothing(
    capsys: pytest.CaptureFixture[str],
    reviewed_brand: Settings,
    db: Database,
    seed: int,
    older: bool,
) -> None:
    request = GenerationRequest(
        brief="a steaming coffee cup", brand="Acme Coffee", count=2, size="256x256", seed=seed
    )
    run_id, next_node = asyncio.run(stopped_after_plan(reviewed_brand, db, request, older=older))
    assert next_node == (("finalize",) if older else ("review_gate",)), next_node
    code, out, err = run_cli(capsys, "runs", "list", "--json")
    [listed] = json.loads(out)
    assert listed["run_id"] == run_id and listed["status"] == "running", listed

    code, out, err = run_cli(capsys, "runs", "resume", run_id, "--json")
    assert code == 0, (err, out)
    resumed = json.loads(out)
    actions = [f"{d['node']}:{d['action']}" for d in resumed["decisions"]]
    assert "plan:stop_unpromising" in actions, actions
    assert resumed["status"] == "awaiting_review", (resumed["status"], actions)
    assert actions[-1] == "review:request_review", actions
    assert resumed["images"] == [] and resumed.get("receipt_path") is None, resumed
    code, out, err = run_cli(capsys, "runs", "show", run_id, "--json")
    trace = json.loads(out)
    assert trace["run"]["status"] == "awaiting_review", trace["run"]
    assert trace["receipts"] == [], trace["receipts"]

    code, out, err = run_cli(capsys, "review", "approve", run_id, "--json")
    assert code == 0, err
    approved = json.loads(out)
    assert approved["status"] == "partial", approved
    assert len(approved["images"]) == 1 and Path(approved["images"][0]["path"]).is_file()
