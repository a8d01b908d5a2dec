"""The plan-act-observe loop, wired. Nodes live in ``agent/nodes``, routers in ``agent/routers``.

intake -> preflight -> recall -> plan -> generate -> moderate -> score -> observe -> review_gate -> finalize -> remember
  | refuse    | refuse / ask       ^  | stop (stopping rule, budget)          |       ^      | review policy
  +-> finalize+-> finalize         |  +---------------------------------------|-------+      +-> review (interrupt)
                                   +------------- replan / fall back <--------+

Every stop with accepted images passes review_gate (``agent/routers.py``); a stop with nothing
accepted goes straight to finalize.
"""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from brandloop.agent.context import RunContext
from brandloop.agent.nodes.finalize import finalize
from brandloop.agent.nodes.generate import generate
from brandloop.agent.nodes.intake import intake
from brandloop.agent.nodes.moderate import moderate
from brandloop.agent.nodes.observe import observe
from brandloop.agent.nodes.plan import plan
from brandloop.agent.nodes.preflight import preflight
from brandloop.agent.nodes.recall import recall
from brandloop.agent.nodes.remember import remember
from brandloop.agent.nodes.review import review, review_gate
from brandloop.agent.nodes.score import score
from brandloop.agent.routers import (
    after_intake,
    after_observe,
    after_plan,
    after_preflight,
    after_review_gate,
)
from brandloop.agent.state import RunInput, RunState
from brandloop.agent.tracing import traced_node


def build_graph() -> StateGraph[RunState, RunContext, RunInput, RunState]:
    graph = StateGraph(RunState, context_schema=RunContext, input_schema=RunInput)
    graph.add_node("intake", traced_node("intake", intake))
    graph.add_node("preflight", traced_node("preflight", preflight))
    graph.add_node("recall", traced_node("recall", recall))
    graph.add_node("plan", traced_node("plan", plan))
    graph.add_node("generate", traced_node("generate", generate))
    graph.add_node("moderate", traced_node("moderate", moderate))
    graph.add_node("score", traced_node("score", score))
    graph.add_node("observe", traced_node("observe", observe))
    graph.add_node("review_gate", traced_node("review_gate", review_gate))
    graph.add_node("review", traced_node("review", review))
    graph.add_node("finalize", traced_node("finalize", finalize))
    graph.add_node("remember", traced_node("remember", remember))

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


def compile_graph(
    checkpointer: BaseCheckpointSaver[str] | None = None,
) -> CompiledStateGraph[RunState, RunContext, RunInput, RunState]:
    return build_graph().compile(checkpointer=checkpointer)
