"""The OTLP/HTTP span exporter of ``crossbridge_otel.export.encoding`` sends a large batch as several requests."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.otlp_sink import OtlpSink

from crossbridge_otel.export.encoding import FastOTLPSpanExporter, encode_spans


def _batch(count: int) -> list:
    kept = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "split"}))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("split")
    for index in range(count):
        with tracer.start_as_current_span(f"span {index}", attributes={"index": index, "text": "x" * 50}):
            pass
    return list(kept.get_finished_spans())


def test_a_batch_over_the_request_limit_arrives_as_several_requests_each_span_once():
    """Encoded larger than request_limit, a batch goes out in requests under the limit, every span exactly once."""
    batch = _batch(40)
    with OtlpSink() as sink:
        exporter = FastOTLPSpanExporter(endpoint=f"{sink.endpoint}/v1/traces")
        exporter.request_limit = len(encode_spans(batch)) // 5
        assert exporter.export(batch) is SpanExportResult.SUCCESS
        exporter.shutdown()
        received = [span.span_id for _, span in sink.spans()]
        sizes = [request.ByteSize() for request in sink.traces]
    assert sorted(received) == sorted(s.context.span_id.to_bytes(8, "big") for s in batch)
    assert len(sizes) > 1 and max(sizes) <= exporter.request_limit
    assert exporter.sent_before_failing == 0


def test_a_failed_request_says_how_many_spans_went_out_before_it():
    """Requests go out in order; when one fails (a span over max_request_size), sent_before_failing counts the
    spans the earlier requests delivered."""
    batch = _batch(4)
    huge = InMemorySpanExporter()
    provider = TracerProvider(resource=batch[0].resource)
    provider.add_span_processor(SimpleSpanProcessor(huge))
    with provider.get_tracer("split").start_as_current_span("huge", attributes={"text": "x" * 5000}):
        pass
    batch += huge.get_finished_spans()
    with OtlpSink() as sink:
        exporter = FastOTLPSpanExporter(endpoint=f"{sink.endpoint}/v1/traces", max_request_size=3000)
        exporter.request_limit = 2000
        assert exporter.export(batch) is SpanExportResult.FAILURE
        exporter.shutdown()
        received = len(sink.spans())
    assert received == 4 and exporter.sent_before_failing == 4
