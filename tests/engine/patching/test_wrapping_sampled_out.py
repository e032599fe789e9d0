"""The sampled-out fast path (the current span read from the context variable) decides as get_current_span() did."""

from __future__ import annotations

import pytest
from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation import _SPAN_KEY

from crossbridge_otel.patching.targets import Target

S = "victims.shapes"


@pytest.fixture
def shapes(instrument):
    """The victims module with add instrumented."""
    from victims import shapes as module

    instrument(Target(S, "add", "victim.add"))
    return module


def _parent(sampled: bool) -> NonRecordingSpan:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else 0)
    return NonRecordingSpan(SpanContext(trace_id=0x1234, span_id=0x5678, is_remote=True, trace_flags=flags))


def test_ended_but_sampled_parent_still_gets_a_child(shapes, telemetry):
    """A parent that has ended (no longer recording) but was sampled still parents a recorded span."""
    parent = telemetry.tracer_provider.get_tracer("t").start_span("parent")
    parent.end()
    with trace.use_span(parent):
        assert shapes.add(1) == 2
    assert telemetry.span("victim.add").parent.span_id == parent.get_span_context().span_id


def test_sampled_remote_parent_gets_a_child(shapes, telemetry):
    """A sampled non-recording parent (a remote context) is not sampled out."""
    with trace.use_span(_parent(sampled=True)):
        shapes.add(1)
    assert telemetry.span("victim.add").parent.span_id == 0x5678


def test_unsampled_parent_skips_the_span(shapes, telemetry):
    """A valid unsampled parent means no span, and the call's result unchanged."""
    with trace.use_span(_parent(sampled=False)):
        assert shapes.add(4) == 5
    assert telemetry.spans() == []


def test_a_non_span_under_the_span_key_counts_as_no_parent(shapes, telemetry):
    """Something that is not a Span stored under the current-span key is ignored, as get_current_span() does."""
    token = context.attach(context.set_value(_SPAN_KEY, "not a span"))
    try:
        assert shapes.add(1) == 2
    finally:
        context.detach(token)
    assert telemetry.span("victim.add").parent is None
