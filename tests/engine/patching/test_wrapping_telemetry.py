"""What a wrapped call records: span attributes, outcome, duration metric, redaction, the switches."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import crossbridge_otel
from crossbridge_otel.patching.instrumentor import DURATION_METRIC
from crossbridge_otel.patching.readers import failed_if_false
from crossbridge_otel.patching.targets import Target

S = "victims.shapes"


@pytest.fixture
def shapes(instrument):
    """The victims module with add, boom and maybe (False means a swallowed failure) instrumented."""
    from victims import shapes as module

    instrument(
        Target(S, "add", "victim.add", call_attributes=lambda a, kw: {"crossbridge.victim.a": a[0], "none": None},
               result_attributes=lambda r: {"crossbridge.victim.sum": r}),
        Target(S, "boom", "victim.boom"),
        Target(S, "maybe", "victim.maybe", outcome=failed_if_false("returned_false", "token=abc123 rejected")),
    )
    return module


def _sampled_out_parent() -> NonRecordingSpan:
    context = SpanContext(trace_id=0x1234, span_id=0x5678, is_remote=True, trace_flags=TraceFlags(0))
    return NonRecordingSpan(context)


def test_span_carries_static_call_and_result_attributes(shapes, telemetry):
    """A span has crossbridge.area/category, code.function.name and the extractors' attributes (None dropped)."""
    shapes.add(2, 3)
    attributes = dict(telemetry.span("victim.add").attributes)
    assert attributes == {
        "crossbridge.area": "victim",
        "crossbridge.category": "testing",
        "code.function.name": "victims.shapes.add",
        "crossbridge.victim.a": 2,
        "crossbridge.victim.sum": 5,
    }


def test_span_is_current_inside_the_call_and_parents_nested_work(shapes, telemetry):
    """The wrapped call's span is the parent of spans started inside it, and a child of the caller's span."""
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("caller"):
        shapes.add(1)
    caller, add = telemetry.span("caller"), telemetry.span("victim.add")
    assert add.parent.span_id == caller.context.span_id


def test_runtime_switch_off_records_nothing(shapes, telemetry):
    """set_enabled(False) makes wrappers plain pass-throughs; set_enabled(True) turns them back on."""
    crossbridge_otel.set_enabled(False)
    assert not crossbridge_otel.is_enabled()
    assert shapes.add(1) == 2
    assert telemetry.spans() == [] and telemetry.metric_points(DURATION_METRIC) == []
    crossbridge_otel.set_enabled(True)
    shapes.add(1)
    assert len(telemetry.spans("victim.add")) == 1


def test_sampled_out_parent_records_no_span_and_no_metric(shapes, telemetry):
    """Under a valid but unsampled parent the call runs with no span and no duration point."""
    with trace.use_span(_sampled_out_parent()):
        assert shapes.add(1) == 2
    assert telemetry.spans() == []
    assert telemetry.metric_points(DURATION_METRIC) == []


def test_duration_histogram_has_area_operation_outcome(shapes, telemetry):
    """crossbridge.operation.duration gets one point set per outcome: ok, error, failed."""
    shapes.add(1)
    shapes.maybe(False)
    with pytest.raises(ValueError):
        shapes.boom(ValueError("x"))
    points = {tuple(sorted(p.attributes.items())): p for p in telemetry.metric_points(DURATION_METRIC)}
    expected = {
        ("victim.add", "ok"), ("victim.maybe", "failed"), ("victim.boom", "error"),
    }
    assert {(dict(k)["operation"], dict(k)["outcome"]) for k in points} == expected
    assert all(dict(k)["area"] == "victim" for k in points)
    assert all(p.count == 1 and p.sum >= 0 for p in points.values())


def test_swallowed_failure_sets_error_status_and_type(shapes, telemetry):
    """An outcome reader's failure sets status ERROR, the short error.type and the redacted description."""
    assert shapes.maybe(False) is False
    span = telemetry.span("victim.maybe")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "returned_false"
    assert "abc123" not in span.status.description and "token" in span.status.description


def test_successful_outcome_leaves_status_unset(shapes, telemetry):
    """A result the outcome reader accepts leaves the span status UNSET and no error.type."""
    shapes.maybe(True)
    span = telemetry.span("victim.maybe")
    assert span.status.status_code.name == "UNSET"
    assert "error.type" not in span.attributes


def test_exception_is_recorded_with_qualified_type(shapes, telemetry):
    """An exception from a non-builtin class gets its fully qualified name as error.type."""
    from victims import evidence  # any module-level class would do; build one here

    error_class = type("CoverageError", (Exception,), {"__module__": "core.coverage.errors"})
    evidence.raised.append(error_class)
    with pytest.raises(error_class):
        shapes.boom(error_class("bad report"))
    span = telemetry.span("victim.boom")
    assert span.attributes["error.type"] == "core.coverage.errors.CoverageError"
    assert span.events[0].attributes["exception.type"].endswith("CoverageError")


def test_exception_message_and_stacktrace_are_redacted(shapes, telemetry):
    """Credentials in an exception message never reach the span: message, stacktrace or status."""
    error = ConnectionError("cannot connect to postgresql://crossbridge:s3cr3t@db:5432/cb (password=hunter2)")
    with pytest.raises(ConnectionError) as caught:
        shapes.boom(error)
    assert "s3cr3t" in str(caught.value)  # the application still sees its own exception untouched
    span = telemetry.span("victim.boom")
    event = span.events[0]
    exported = " ".join(
        [str(event.attributes["exception.message"]), str(event.attributes["exception.stacktrace"]),
         span.status.description]
    )
    assert "s3cr3t" not in exported and "hunter2" not in exported
    assert "postgresql://crossbridge:***@db" in exported


def test_count_mode_counts_on_the_enclosing_span(instrument, telemetry):
    """A mode='count' target adds crossbridge.<span>.count to the enclosing span instead of opening spans."""
    instrument(Target(S, "identity", "victim.tick", mode="count"))
    from victims import shapes

    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("outer"):
        for _ in range(3):
            shapes.identity(1)
    shapes.identity(2)
    assert [s.name for s in telemetry.spans()] == ["outer"]
    assert telemetry.span("outer").attributes["crossbridge.victim.tick.count"] == 3


def test_per_event_spans_setting_turns_counts_into_spans(monkeypatch, instrument, telemetry):
    """With CROSSBRIDGE_OTEL_PER_EVENT_SPANS=true a mode='count' target opens a span per call."""
    monkeypatch.setenv("CROSSBRIDGE_OTEL_PER_EVENT_SPANS", "true")
    instrument(Target(S, "identity", "victim.tick", mode="count"))
    from victims import shapes

    shapes.identity(1)
    shapes.identity(2)
    assert len(telemetry.spans("victim.tick")) == 2


def test_disabled_setting_patches_nothing(monkeypatch, instrument, telemetry):
    """With CROSSBRIDGE_OTEL_ENABLED=false nothing is patched and every target reads 'disabled'."""
    from support.engine import state_of

    from crossbridge_otel.patching.status import State

    monkeypatch.setenv("CROSSBRIDGE_OTEL_ENABLED", "false")
    from victims import shapes

    original = shapes.add
    instrument(Target(S, "add", "victim.add"))
    assert shapes.add is original
    assert state_of(S, "add").state == State.DISABLED


def test_odd_attribute_values_become_plain_values():
    """Readers' values the SDK would refuse (numpy scalar, bytes, recursive or mixed list) become plain or text."""
    import numpy

    from crossbridge_otel.patching.wrapping import _clean

    recursive: list = [1]
    recursive.append(recursive)
    cleaned = _clean({"n": numpy.int64(3), "f": numpy.float32(0.5), "b": b"abc", "r": recursive, "m": [1, "a"],
                      "ok": [1, 2], "none": None, "s": "x" * 300, "obj": object()})
    assert cleaned["n"] == 3 and type(cleaned["n"]) is int
    assert type(cleaned["f"]) is float and cleaned["b"] == "<3 bytes>"
    assert cleaned["r"] == "[1, [...]]" and cleaned["m"] == "[1, 'a']" and cleaned["ok"] == [1, 2]
    assert "none" not in cleaned and cleaned["s"] == "x" * 300 and cleaned["obj"].startswith("<object object")
