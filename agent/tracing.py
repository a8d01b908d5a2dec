"""OpenTelemetry spans for the loop: one per node and one per provider call.

The spans go to whatever tracer provider the process installed (the API installs one when
``BRANDLOOP_API_OTEL_EXPORTER`` names an exporter); with none installed they are no-ops that
cost next to nothing, so the agent always calls through here.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

F = TypeVar("F", bound=Callable[..., Awaitable[dict[str, Any]]])

_tracer = trace.get_tracer("brandloop.agent")


def traced_node(name: str, node: F) -> F:
    """Wrap a graph node so each step runs inside a ``node <name>`` span."""

    @functools.wraps(node)
    async def wrapper(state: Any, runtime: Any) -> dict[str, Any]:
        with _tracer.start_as_current_span(f"node {name}") as span:
            span.set_attribute("brandloop.node", name)
            run_id = state.get("run_id") if isinstance(state, dict) else None
            if run_id:
                span.set_attribute("brandloop.run_id", run_id)
            return await node(state, runtime)

    return wrapper  # type: ignore[return-value]


@contextmanager
def provider_span(provider: str, model: str, idempotency_key: str, images: int) -> Iterator[Span]:
    """A span around one paid provider call; an exception marks it as an error."""
    with _tracer.start_as_current_span(f"provider {provider}") as span:
        span.set_attribute("brandloop.provider", provider)
        span.set_attribute("brandloop.model", model)
        span.set_attribute("brandloop.idempotency_key", idempotency_key)
        span.set_attribute("brandloop.images", images)
        try:
            yield span
        except Exception as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
