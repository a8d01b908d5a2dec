"""Every way out of the loop that has something to deliver passes the review gate.

The graph's edges into ``finalize`` (the node that delivers) are enumerated from the graph
itself; each comes from ``review_gate``/``review`` or from a router that, given any state with
an accepted image, sends the run to ``review_gate`` instead: however a run stops (intake or
preflight refusal, the stopping rule, a budget at plan or observe, the round cap, no usable
provider, a refused prompt, enough accepted), a brand whose review asks for a human gets one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from brandloop.agent import routers
from brandloop.agent.graph import build_graph
from brandloop.domain import GenerationRequest

#: the routers whose edges may lead to finalize, by the node they route from
ROUTERS: dict[str, Callable[[Any], str]] = {
    "intake": routers.after_intake,
    "preflight": routers.after_preflight,
    "plan": routers.after_plan,
    "observe": routers.after_observe,
    "review_gate": routers.after_review_gate,
}
#: the nodes that may hand a run to finalize whatever it holds: the gate itself (nothing to
#: hold, or the policy does not ask) and the wait for the verdict
GATE = {"review_gate", "review"}
#: nodes before the loop's first generate: no run has an accepted image there
BEFORE_ANY_IMAGE = {"intake", "preflight"}


def _states() -> list[dict[str, Any]]:
    """Every combination of what the routers read, one accepted image or none."""
    request = GenerationRequest(brief="a cup", brand="Acme Coffee", count=2)
    states = []
    for accepted, candidates, reason, status in itertools.product(
        ([], ["a1"], ["a1", "a2"]),
        ([], ["c1"]),
        ("", "stopped"),
        (None, "running", "refused", "failed", "awaiting_review"),
    ):
        state: dict[str, Any] = {"request": request, "accepted": accepted, "reason": reason}
        if candidates:
            state["candidates"] = candidates
        if status is not None:
            state["status"] = status
        states.append(state)
    return states


def reachable_from(graph: Any, node: str) -> set[str]:
    """Every node some path from ``node`` reaches (``node`` included if on a cycle)."""
    seen: set[str] = set()
    todo = [node]
    while todo:
        for edge in graph.edges:
            if edge.source == todo[-1] and edge.target not in seen:
                seen.add(edge.target)
                todo.append(edge.target)
                break
        else:
            todo.pop()
    return seen


def test_every_edge_into_finalize_passes_the_review_gate_when_there_is_something_to_deliver() -> (
    None
):
    graph = build_graph().compile().get_graph()
    into_finalize = {edge.source for edge in graph.edges if edge.target == "finalize"}
    assert into_finalize <= set(ROUTERS) | GATE, into_finalize
    assert {"plan", "observe"} <= into_finalize  # the loop's own stops are among them
    assert BEFORE_ANY_IMAGE.isdisjoint(reachable_from(graph, "generate"))
    for source in sorted(into_finalize - GATE - BEFORE_ANY_IMAGE):
        for state in _states():
            if state["accepted"]:
                assert ROUTERS[source](state) != "finalize", (source, state)
