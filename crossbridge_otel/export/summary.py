"""``CROSSBRIDGE_OTEL_SUMMARY``: the process's traces on stderr at exit, drawn like ``crossbridge-otel show``.

Up to :data:`TREE_LIMIT` spans: the trees, with durations, errors and retry events. Beyond: one line per span
name (count, errors, p50/p95/max) and the number of traces folded. Every span is counted, however many there
are; the per-name durations are a bounded sample past 10,000 per name, and the trees keep the first 2,000 spans.
"""

from __future__ import annotations

import threading
from typing import TextIO

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import StatusCode

from crossbridge_otel.view.records import Event, Span, build_traces
from crossbridge_otel.view.stats import NameStats, cost_line, model_call_cost
from crossbridge_otel.view.terminal import aggregate_lines, trace_lines

__all__ = ["TREE_LIMIT", "SummaryProcessor", "to_view_span"]

TREE_LIMIT = 200  # more spans than this and the summary aggregates
_MAX_SPANS = 2000  # spans kept for drawing trees
_MAX_TRACE_IDS = 1_000_000  # past this the trace count is a lower bound ("at least")
_WIDTH = 160


def to_view_span(span: ReadableSpan) -> Span:
    """An SDK span as the plain record ``crossbridge_otel.view`` draws."""
    context = span.context
    parent = span.parent
    return Span(
        trace_id=f"{context.trace_id:032x}" if context else "",
        span_id=f"{context.span_id:016x}" if context else "",
        parent_id=f"{parent.span_id:016x}" if parent else "",
        name=span.name,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or 0,
        status=span.status.status_code.name,
        message=span.status.description or "",
        attributes=dict(span.attributes or {}),
        events=[Event(e.name, e.timestamp or 0, dict(e.attributes or {})) for e in span.events],
    )


class SummaryProcessor(SpanProcessor):
    """Counts every ended span, keeps the first 2,000 for trees, and renders the summary."""

    def __init__(self, tree_limit: int = TREE_LIMIT) -> None:
        self._lock = threading.Lock()
        self._tree_limit = tree_limit
        self._spans: list[ReadableSpan] = []
        self._trace_ids: set[int] = set()
        self._names: dict[str, NameStats] = {}
        self.total = 0
        self.model_calls = 0
        self.cost_usd = 0.0

    @property
    def overflow(self) -> int:
        """Spans counted but not kept for trees."""
        return self.total - len(self._spans)

    def on_end(self, span: ReadableSpan) -> None:
        duration = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        error = span.status.status_code == StatusCode.ERROR
        cost = model_call_cost(span.attributes or {})
        with self._lock:
            self.total += 1
            if cost is not None:
                self.model_calls += 1
                self.cost_usd += cost
            if span.context is not None and len(self._trace_ids) < _MAX_TRACE_IDS:
                self._trace_ids.add(span.context.trace_id)
            stats = self._names.get(span.name)
            if stats is None:
                stats = self._names[span.name] = NameStats(span.name)
            stats.add(duration, error)
            if len(self._spans) < _MAX_SPANS:
                self._spans.append(span)

    def render(self, width: int = _WIDTH) -> str:
        with self._lock:
            spans = list(self._spans)
            total, traces = self.total, len(self._trace_ids)
            names = sorted(self._names.values(), key=lambda s: (-s.total_ms, s.name))
            errors = sum(s.errors for s in names)
            model_calls, cost_usd = self.model_calls, self.cost_usd
        at_least = "at least " if traces >= _MAX_TRACE_IDS else ""
        failed = f", {errors} with errors" if errors else ""
        lines = [f"crossbridge-otel: {total} spans in {at_least}{traces} trace(s){failed}"]
        if model_calls:
            lines.append("  " + cost_line(model_calls, cost_usd))
        if total <= self._tree_limit:
            for trace in build_traces(to_view_span(s) for s in spans)[0]:
                lines += trace_lines(trace, width)
        else:
            lines.append(f"  folded {at_least}{traces} trace(s) into {len(names)} span names:")
            lines += aggregate_lines(names, width, limit=30)
        return "\n".join(lines) + "\n"

    def print(self, stream: TextIO) -> None:
        stream.write(self.render())

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
