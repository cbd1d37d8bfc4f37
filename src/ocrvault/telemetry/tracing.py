"""OpenTelemetry traces: off unless ``OCRVAULT_OTLP_ENDPOINT`` names a collector.

Off, every span below is OpenTelemetry's no-op span (no provider is installed), which
costs a function call. On, spans go in batches to the OTLP/HTTP endpoint the operator
configured, and nowhere else: the ``OTEL_*`` environment variables are not read, so an
environment that sets them does not make ocrvault send anything (see
tests/security/test_no_telemetry.py).

Spans: ``http.request`` (api/observe.py), ``queue.wait`` (submission to claim),
``decode`` (one per page taken from the sandbox), ``recognise`` (one per page),
``seal`` and ``store`` (each stored object). Attributes are content-free by
construction: :func:`span` takes numbers, booleans and the short words it is given by
its callers (route templates, engine names, object kinds), never request data; the
test with an in-memory exporter (tests/security/test_trace_content.py) checks that
no span holds document text or a secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from opentelemetry import trace

if TYPE_CHECKING:  # the SDK is imported where tracing is turned on: off, it costs memory
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

T = TypeVar("T")
Attribute = str | int | float | bool

_provider: TracerProvider | None = None
_tracer: trace.Tracer = trace.NoOpTracer()


def configure(endpoint: str | None, role: str, processor: SpanProcessor | None = None) -> None:
    """Trace to ``endpoint`` (an OTLP/HTTP traces URL, ``http://collector:4318/v1/traces``),
    or into ``processor`` (tests); with neither, tracing stays off. Idempotent per process:
    the first configuration wins, as OpenTelemetry's global provider does."""
    global _provider, _tracer
    if _provider is not None or (endpoint is None and processor is None):
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create(
        {"service.name": "ocrvault", "service.namespace": "ocrvault", "ocrvault.role": role}))
    if processor is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))
    provider.add_span_processor(processor)
    _provider, _tracer = provider, provider.get_tracer("ocrvault")


def shutdown() -> None:
    """Flush and stop the exporter (at the end of a process)."""
    global _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    _provider, _tracer = None, trace.NoOpTracer()


def enabled() -> bool:
    return _provider is not None


def span(name: str, *, start: datetime | None = None,
         **attributes: Attribute) -> AbstractContextManager[trace.Span]:
    """A span named ``name`` around a block, child of the current one. ``start``
    backdates it (the queue wait began at submission, in another process)."""
    start_ns = int(start.timestamp() * 1e9) if start is not None else None
    return _tracer.start_as_current_span(name, start_time=start_ns, attributes=attributes)


def interval(name: str, start: datetime, **attributes: Attribute) -> None:
    """A span ``name`` from ``start`` until now, for a wait that began elsewhere."""
    with span(name, start=start, **attributes):
        pass


def each(name: str, items: Iterator[T]) -> Iterator[T]:
    """``items``, taking each one inside a span ``name`` (the decode sandbox hands pages
    over one by one: each page's decode is a span of its own)."""
    try:
        while True:
            with span(name):
                try:
                    item = next(items)
                except StopIteration:
                    return
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:  # abandoned early: the sandbox stops the child that held it
            close()
