"""A terminal summary of the process's spans at exit: the trace tree, durations and error statuses."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any, TextIO

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import StatusCode

__all__ = ["SummaryProcessor"]

_MAX_SPANS = 2000


class SummaryProcessor(SpanProcessor):
    """Keeps up to 2,000 ended spans and prints them as trees."""

    def __init__(self) -> None:
        self._spans: list[ReadableSpan] = []
        self._lock = threading.Lock()
        self.overflow = 0

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            if len(self._spans) < _MAX_SPANS:
                self._spans.append(span)
            else:
                self.overflow += 1

    def render(self) -> str:
        with self._lock:
            spans = list(self._spans)
        children: dict[Any, list[ReadableSpan]] = defaultdict(list)
        ids = {s.context.span_id for s in spans if s.context is not None}
        roots = []
        for span in spans:
            parent = span.parent.span_id if span.parent is not None else None
            if parent in ids:
                children[parent].append(span)
            else:
                roots.append(span)
        traces = len({s.context.trace_id for s in spans if s.context})
        lines = [f"crossbridge-otel: {len(spans)} spans in {traces} trace(s)"]

        def walk(span: ReadableSpan, depth: int) -> None:
            duration = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
            mark = "ERROR " + (span.status.description or "") if span.status.status_code == StatusCode.ERROR else "ok"
            lines.append(f"{'  ' * depth}- {span.name}  {duration:.1f} ms  {mark}".rstrip())
            for child in sorted(children.get(span.context.span_id if span.context else None, []),
                                key=lambda s: s.start_time or 0):
                walk(child, depth + 1)

        for root in sorted(roots, key=lambda s: s.start_time or 0):
            walk(root, 1)
        if self.overflow:
            lines.append(f"  ... {self.overflow} more spans not shown")
        return "\n".join(lines) + "\n"

    def print(self, stream: TextIO) -> None:
        stream.write(self.render())
