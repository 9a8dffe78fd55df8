"""Optional OpenTelemetry tracing, off by default: with MEDIA_LAKE_OTLP_ENDPOINT set (an OTLP/HTTP
collector, e.g. http://otel-collector:4318), each stage execution is a span, sent when it ends.

A run's stages share one trace whose id is the run id, so the steps of a run that ran in other
processes, workers or pods line up in one trace with nothing propagated between them, and a
trace is found from the run id the UI and the logs show. The stage's log lines (stage_logger)
are the span's events, and an error line marks the span failed."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

ENDPOINT_ENV = "MEDIA_LAKE_OTLP_ENDPOINT"
SERVICE_NAME = "media-lake"
EXPORT_TIMEOUT_SECONDS = 2.0  # the most a stage waits for an unreachable collector
ATTRIBUTE_TYPES = (str, bool, int, float)


@functools.cache
def provider():
    """This process's tracer provider, or None when tracing is off."""
    endpoint = os.environ.get(ENDPOINT_ENV)
    if not endpoint:
        return None
    # imported only when tracing is on: the exporter takes half a second to import
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from media_assets.observability.logs import formatter, log_format

    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces", timeout=EXPORT_TIMEOUT_SECONDS)
    chosen = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    chosen.add_span_processor(BatchSpanProcessor(exporter))
    handler = logging.StreamHandler()  # the exporter's own complaints, as log lines like the rest
    handler.setFormatter(formatter(log_format()))
    logging.getLogger("opentelemetry").addHandler(handler)
    logging.getLogger("opentelemetry").propagate = False
    return chosen


def tracer() -> trace.Tracer | None:
    return chosen.get_tracer(__name__) if (chosen := provider()) else None


def run_context(run_id: str):
    """A remote parent whose trace id is the run id's 128 bits."""
    trace_id = int(run_id.replace("-", ""), 16)
    span_id = int.from_bytes(hashlib.blake2b(run_id.encode(), digest_size=8).digest(), "big") or 1
    parent = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(parent))


@contextlib.contextmanager
def stage_span(stage: str, run_id: str, **attributes) -> Iterator[None]:
    """The span of one stage execution (a no-op when tracing is off)."""
    if (chosen := tracer()) is None:
        yield
        return
    try:
        with chosen.start_as_current_span(
            stage, context=run_context(run_id), attributes=_attributes({"run_id": run_id, **attributes})
        ):
            yield
    finally:
        # sent now: run workers end with os._exit (forkserver children), which skips the flush at exit
        provider().force_flush(int(EXPORT_TIMEOUT_SECONDS * 1000))


def span_events(_, method: str, event_dict: dict) -> dict:
    """structlog processor: the line as an event of the current span; an error line fails it."""
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(event_dict["event"], _attributes(event_dict))
        if method in ("error", "critical", "exception"):
            span.set_status(Status(StatusCode.ERROR, event_dict["event"]))
    return event_dict


def _attributes(fields: dict) -> dict:
    """Fields as span attributes: primitives and lists of them (None and the rest are left out)."""
    attributes = {}
    for name, value in fields.items():
        if isinstance(value, (list, tuple)) and all(isinstance(item, ATTRIBUTE_TYPES) for item in value):
            value = tuple(value)
        if name != "event" and isinstance(value, (*ATTRIBUTE_TYPES, tuple)):
            attributes[f"media_lake.{name}"] = value
    return attributes
