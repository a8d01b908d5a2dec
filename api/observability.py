"""Operations: Prometheus metrics, the access log, and optional OpenTelemetry spans (off unless
``BRANDLOOP_API_OTEL_EXPORTER`` names an exporter). Log lines themselves are ``brandloop.logs``'s.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from brandloop.once import loads
from brandloop.registry.costs import total_usd
from brandloop.registry.db import Database
from brandloop.registry.models import AttemptRow
from brandloop.registry.models_service import JobRow


class AccessLog:
    """One JSON line per request, in the same shape as every other log line, formatted on the
    serving loop and written in batches (a quarter of a second, or 256 lines, at most apart):
    no logging thread competes with the loop for the interpreter, no write call per request."""

    def __init__(self, write: Callable[[str], Any] | None = None, *, every_s: float = 0.25) -> None:
        self._write = write or _stderr_write
        self.every_s = every_s
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def record(self, *, method: str, path: str, status: int, ms: float, request_id: str) -> None:
        self._lines.append(
            json.dumps(
                {
                    "ts": round(time.time(), 3),
                    "level": "info",
                    "logger": "brandloop.api.access",
                    "msg": "request",
                    "request_id": request_id,
                    "run_id": None,
                    "method": method,
                    "path": path,
                    "status": status,
                    "ms": ms,
                }
            )
        )
        if len(self._lines) >= 256:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.every_s, self.flush)
            except RuntimeError:  # no loop (called from a thread): write at once
                self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines:
            lines, self._lines = self._lines, []
            self._write("\n".join(lines) + "\n")


def _stderr_write(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


# --------------------------------------------------------------------------- metrics

SIGNAL_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class RegistryCollector(Collector):
    """Figures read from the registry at scrape time, so they survive restarts and agree across
    processes: jobs by state, attempts by provider and outcome, cost, cache hit ratio, and the
    distribution of each quality signal over the most recent scored attempts."""

    def __init__(self, db: Database, *, recent: int = 2000) -> None:
        self.db = db
        self.recent = recent

    def collect(self) -> Iterator[Any]:
        with self.db.session() as session:
            jobs = GaugeMetricFamily("brandloop_jobs", "Jobs by state", labels=["state"])
            states = dict(
                session.execute(select(JobRow.state, func.count()).group_by(JobRow.state)).all()
            )
            for state in (
                "queued",
                "running",
                "awaiting_review",
                "succeeded",
                "failed",
                "cancelled",
            ):
                jobs.add_metric([state], float(states.get(state, 0)))
            yield jobs

            attempts = CounterMetricFamily(
                "brandloop_attempts",
                "Provider attempts by provider and outcome",
                labels=["provider", "outcome"],
            )
            hits = total = 0
            # one series per (provider, outcome): the rows come per model and cache hit, and a
            # series listed twice is invalid exposition (an outside tester saw duplicates)
            series: dict[tuple[str, str], int] = {}
            for model, outcome, cache_hit, n in session.execute(
                select(
                    AttemptRow.model, AttemptRow.outcome, AttemptRow.cache_hit, func.count()
                ).group_by(AttemptRow.model, AttemptRow.outcome, AttemptRow.cache_hit)
            ):
                key = (model.split("/", 1)[0], outcome)
                series[key] = series.get(key, 0) + n
                total += n
                hits += n if cache_hit else 0
            for (provider, outcome), n in sorted(series.items()):
                attempts.add_metric([provider, outcome], float(n))
            yield attempts

            cost = CounterMetricFamily("brandloop_cost_usd", "Money spent on provider calls (USD)")
            # what GET /v1/costs adds up, over every tenant and day (brandloop/registry/costs.py):
            # a running run's paid calls count as they are paid, not when the run ends; to the
            # micro-dollar, as every money figure the API answers (no float noise)
            cost.add_metric([], total_usd(session))
            yield cost

            ratio = GaugeMetricFamily(
                "brandloop_cache_hit_ratio", "Share of attempts served from cache"
            )
            ratio.add_metric([], hits / total if total else 0.0)
            yield ratio

            rows = session.scalars(
                select(AttemptRow.scores)
                .where(AttemptRow.scores.is_not(None))
                .order_by(AttemptRow.created_at.desc())
                .limit(self.recent)
            )
            per_signal: dict[str, list[float]] = {}
            for scores in rows:
                for name, signal in (scores or {}).get("signals", {}).items():
                    per_signal.setdefault(name, []).append(float(signal.get("value", 0.0)))
            hist = HistogramMetricFamily(
                "brandloop_signal_value",
                "Quality signal values of recent attempts",
                labels=["signal"],
            )
            for name, values in sorted(per_signal.items()):
                buckets = [
                    (str(b), float(sum(1 for v in values if v <= b))) for b in SIGNAL_BUCKETS
                ]
                buckets.append(("+Inf", float(len(values))))
                hist.add_metric([name], buckets, sum_value=sum(values))
            yield hist


class ModelLoadsCollector(Collector):
    """Each model this process has loaded, by loader and loading thread (``brandloop-warmup``
    when loaded at start, not by a request or job): ``brandloop_model_loads`` (how many times)
    and ``brandloop_model_load_seconds`` (how long, all told); ``brandloop_gc_frozen_objects``:
    what the warm-up left out of garbage collection (``api/warmup.py``)."""

    def collect(self) -> Iterator[Any]:
        labels = ["loader", "thread"]
        count = GaugeMetricFamily(
            "brandloop_model_loads",
            "Model loads in this process, by loader and thread",
            labels=labels,
        )
        seconds = GaugeMetricFamily(
            "brandloop_model_load_seconds",
            "Seconds spent loading models in this process, by loader and thread",
            labels=labels,
        )
        made: dict[tuple[str, str], list[float]] = {}
        for load in loads():
            made.setdefault((load.loader, load.thread), []).append(load.seconds)
        for key, times in made.items():
            count.add_metric(list(key), len(times))
            seconds.add_metric(list(key), round(sum(times), 6))
        yield count
        yield seconds
        yield GaugeMetricFamily(
            "brandloop_gc_frozen_objects",
            "Objects left out of garbage collection after the warm-up (the app and its models)",
            value=gc.get_freeze_count(),
        )


class Metrics:
    """The service's metrics, in a registry of its own (one per app)."""

    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_seconds = Histogram(
            "brandloop_http_request_duration_seconds",
            "HTTP request latency by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.registry.register(RegistryCollector(db))
        self.registry.register(ModelLoadsCollector())

    def observe(self, method: str, route: str, status: int, started: float) -> None:
        self.request_seconds.labels(method, route, str(status)).observe(
            time.perf_counter() - started
        )


# --------------------------------------------------------------------------- tracing


def setup_tracing(exporter: str) -> Any | None:
    """A tracer when an exporter is configured; None (no spans at all) by default."""
    if exporter == "none":
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    span_exporter: SpanExporter
    if exporter == "console":
        span_exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "brandloop"}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    # Installed globally too, so the agent's node and provider-call spans (agent/tracing.py)
    # are exported under each job's span.
    trace.set_tracer_provider(provider)
    return provider.get_tracer("brandloop.api")
