"""Every node step and every provider call is an OpenTelemetry span when tracing is on."""

from __future__ import annotations

from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from brandloop.agent.runner import run_generation
from brandloop.domain import GenerationRequest
from brandloop.policies.brandkit import load_brand_kit
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings

EXPORTER = InMemorySpanExporter()


def _install_provider() -> None:
    """The process-wide provider can be set once; the first test to need it sets it."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)


async def test_nodes_and_provider_calls_are_spans(
    settings: Settings, db: Database, acme_kit_path: Path, seed: int
) -> None:
    _install_provider()
    EXPORTER.clear()
    with db.session() as session:
        crud.upsert_brand(session, tenant="default", kit=load_brand_kit(acme_kit_path))
    request = GenerationRequest(brief="a cup", brand="Acme Coffee", size="128x128", seed=seed)
    result = await run_generation(request, settings=settings, db=db, use_memory=False)
    spans = [
        s
        for s in EXPORTER.get_finished_spans()
        if s.attributes.get("brandloop.run_id") == result.run_id or s.name.startswith("provider ")
    ]
    names = {s.name for s in spans}
    assert {"node intake", "node plan", "node generate", "node score", "node finalize"} <= names
    provider_spans = [s for s in spans if s.name == "provider procedural"]
    assert provider_spans and all(
        s.attributes["brandloop.idempotency_key"].startswith("bl-") for s in provider_spans
    )
    generate = next(s for s in spans if s.name == "node generate")
    assert any(
        s.parent is not None and s.parent.span_id == generate.context.span_id
        for s in provider_spans
    ), "provider calls are children of the generate node's span"
