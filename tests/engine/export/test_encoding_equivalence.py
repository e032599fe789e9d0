"""Our OTLP span encoder produces the request the SDK's encoder does (compared as decoded protobuf messages)."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from crossbridge_otel.export.encoding import encode_spans

ODD_VALUES = {
    "s": "text", "empty": "", "unicode": "ünï ☃ 日本", "long": "x" * 300,
    "t": True, "f": False, "zero": 0, "neg": -5, "big": 2**63 - 1, "small": -(2**63), "huge": 2**70,
    "pi": 3.14159, "negf": -0.0, "inf": float("inf"),
    "strs": ["a", "b"], "bools": [True, False], "ints": [1, -2, 300], "floats": (0.5, 1.5), "none_list": [],
}


def _spans(provider_resources):
    """Ended SDK spans of every shape, from two providers (two resources) and several scopes."""
    spans = []
    for resource in provider_resources:
        exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=resource, span_limits=SpanLimits(max_attributes=20, max_events=2,
                                                                            max_links=2))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        plain = provider.get_tracer("plain")
        scoped = provider.get_tracer("scoped", "1.2.3", schema_url="https://example/schema",
                                     attributes={"scope.attr": "v", "scope.n": 3})
        remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1),
                             trace_state=TraceState([("vendor", "value"), ("other", "x")]))
        for kind in SpanKind:
            with plain.start_as_current_span(f"kind {kind.name}", kind=kind):
                pass
        from opentelemetry import trace

        with scoped.start_as_current_span("odd values", attributes=ODD_VALUES) as span:
            span.add_event("first", {"e.s": "x", "e.i": 1, "e.l": [1, 2]})
            span.add_event("second", timestamp=123)
            span.add_event("third (dropped one)")
            span.set_status(Status(StatusCode.ERROR, "it broke"))
        with plain.start_as_current_span("under remote", context=trace.set_span_in_context(NonRecordingSpan(remote)),
                                         links=[Link(remote, {"l.k": "v"}), Link(SpanContext(1, 2, False)),
                                                Link(SpanContext(3, 4, False))]) as span:
            span.set_status(Status(StatusCode.OK))
            with scoped.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
                child.set_attribute("n", 1)
        with plain.start_as_current_span(""):
            pass
        spans += exporter.get_finished_spans()
    return spans


@pytest.fixture
def spans():
    """A varied batch interleaving two resources (the second with a schema URL) and their scopes."""
    first = Resource.create({"service.name": "svc", "r.i": 1, "r.l": ["a"]})
    second = Resource({"service.name": "other"}, schema_url="https://example/resource")
    made = _spans([first, second])
    # interleave, and add a span whose resource is an equal but distinct object (the SDK groups by equality)
    half = len(made) // 2
    mixed = [s for pair in zip(made[:half], made[half:], strict=False) for s in pair] + made[2 * half:]
    return mixed


def test_decoded_request_equals_the_sdk_encoders(spans, caplog):
    """Every span of the varied batch decodes to the same ExportTraceServiceRequest as the SDK encoder makes."""
    with caplog.at_level(logging.ERROR):
        ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
        theirs = sdk_encode_spans(spans)
    assert len(theirs.resource_spans) == 2
    assert ours == theirs


def test_equal_resources_group_together_as_the_sdk_does():
    """Spans carrying equal but distinct Resource objects land in one ResourceSpans, in the SDK's order."""
    batch = _spans([Resource({"k": "v"})]) + _spans([Resource({"k": "v"})])
    ours = ExportTraceServiceRequest.FromString(encode_spans(batch))
    assert len(ours.resource_spans) == 1
    assert ours == sdk_encode_spans(batch)


def test_out_of_range_int_is_skipped_like_the_sdk():
    """An int outside int64 is dropped from the attributes (the SDK's encoder fails that key alone)."""
    batch = _spans([Resource({"k": "v"})])
    ours = ExportTraceServiceRequest.FromString(encode_spans(batch))
    odd = [s for rs in ours.resource_spans for ss in rs.scope_spans for s in ss.spans if s.name == "odd values"]
    keys = {kv.key for kv in odd[0].attributes}
    assert "huge" not in keys and "big" in keys


def test_the_fast_path_alone_equals_the_sdk_encoder(monkeypatch):
    """Without the out-of-range int (which hands a batch to the SDK's encoder), our own wire-format writer encodes
    the whole varied batch, and it decodes equal to the SDK's request: the fallback cannot hide a mistake here."""
    from crossbridge_otel.export import encoding

    monkeypatch.setitem(ODD_VALUES, "huge", 7)
    first = Resource.create({"service.name": "svc", "r.i": 1, "r.l": ["a"]})
    second = Resource({"service.name": "other"}, schema_url="https://example/resource")
    batch = _spans([first, second]) + _spans([Resource({"service.name": "svc", "r.i": 1, "r.l": ["a"]})])
    ours = ExportTraceServiceRequest.FromString(encoding._encode(batch))  # no fallback: an error would raise
    assert ours == sdk_encode_spans(batch)


def test_cached_attributes_keep_each_values_type():
    """A key seen with 1, then True, 1.0, -0.0 and "1" (equal values, other types) encodes each as the SDK does."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"k": "v"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("cache")
    for value in (1, True, 1.0, 0.0, -0.0, "1", 1, True):
        with tracer.start_as_current_span("same name", attributes={"k": value}):
            pass
    batch = exporter.get_finished_spans()
    ours = ExportTraceServiceRequest.FromString(encode_spans(batch))
    assert ours == sdk_encode_spans(batch)
    values = [s.attributes[0].value for s in ours.resource_spans[0].scope_spans[0].spans]
    assert [v.WhichOneof("value") for v in values] == ["int_value", "bool_value", "double_value", "double_value",
                                                       "double_value", "string_value", "int_value", "bool_value"]
    assert str(values[4].double_value) == "-0.0"


def test_dropped_counts_without_any_kept_event_or_link_are_encoded():
    """With room for no event or link, the spans' dropped_events and dropped_links counts still go out as the SDK's."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"k": "v"}), span_limits=SpanLimits(max_events=0, max_links=0,
                                                                                    max_attributes=0))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("limits").start_as_current_span(
            "none kept", links=[Link(SpanContext(1, 2, False))], attributes={"a": 1}) as span:
        span.add_event("dropped")
        span.add_event("dropped too")
    batch = exporter.get_finished_spans()
    ours = ExportTraceServiceRequest.FromString(encode_spans(batch))
    encoded = ours.resource_spans[0].scope_spans[0].spans[0]
    assert (encoded.dropped_events_count, encoded.dropped_links_count, encoded.dropped_attributes_count) == (2, 1, 1)
    assert ours == sdk_encode_spans(batch)


def test_spans_encoded_as_they_end_give_the_sdk_encoders_request(spans, caplog):
    """Spans prepared as they end (encoded then; one with an unusual value kept whole) encode to the same request."""
    from crossbridge_otel.export.encoding import EncodedSpan, prepare

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"k": "v"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("bad").start_as_current_span("bad key", attributes={"ok": 1, "bad": "\ud800"}):
        pass  # (a lone surrogate cannot be encoded: the SDK's encoder logs it and skips the key)
    spans = [*spans, *exporter.get_finished_spans()]
    with caplog.at_level(logging.ERROR):
        prepared = [prepare(span) for span in spans]
        assert not caplog.records  # nothing logged on the application's thread: the worker encodes (and logs) those
        ours = ExportTraceServiceRequest.FromString(encode_spans(prepared))
        assert caplog.records
    kept_whole = [item.name for item in prepared if not isinstance(item, EncodedSpan)]
    assert kept_whole == ["odd values", "odd values", "bad key"]  # (an int beyond int64 in the first two)
    assert ours == sdk_encode_spans(spans)


def test_a_span_class_overriding_a_read_property_is_read_through_it():
    """A ReadableSpan subclass whose name and status properties say something else than its fields is encoded from
    those properties (the fields are read directly only for classes that override none), as the SDK's encoder does."""
    from opentelemetry.sdk.trace import ReadableSpan

    class Renamed(ReadableSpan):
        @property
        def name(self) -> str:
            return "renamed"

        @property
        def status(self) -> Status:
            return Status(StatusCode.ERROR, "from the property")

    context = SpanContext(0xAB, 0xCD, is_remote=False, trace_flags=TraceFlags(1))
    spans = [ReadableSpan("plain", context, resource=Resource({"k": "v"}), start_time=1, end_time=2),
             Renamed("field name", context, resource=Resource({"k": "v"}), start_time=1, end_time=2)]
    ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    encoded = [s for rs in ours.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert [(s.name, s.status.message) for s in encoded] == [("plain", ""), ("renamed", "from the property")]
    assert ours == sdk_encode_spans(spans)
