"""Spans, log records, metric points, traces and runs as plain data, and how they fit together."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "LogLine", "MetricPoint", "Run", "Span", "Telemetry", "Trace", "build_traces"]


@dataclass
class Event:
    """A span event (``exception``, ``retry``, ``rate_limit.wait``, ...)."""

    name: str
    time_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class LogLine:
    """A log record, with the span it was emitted under (empty IDs: outside any span)."""

    time_ns: int
    severity: str
    body: str
    attributes: dict[str, Any] = field(default_factory=dict)
    trace_id: str = ""
    span_id: str = ""
    scope: str = ""
    run: str = ""


@dataclass
class Span:
    """A finished span. ``status`` is ``UNSET``, ``OK`` or ``ERROR``; ``parent_id`` is empty for a root."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    start_ns: int
    end_ns: int
    status: str = "UNSET"
    message: str = ""
    kind: str = "INTERNAL"
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""
    run: str = ""
    children: list[Span] = field(default_factory=list, repr=False)
    logs: list[LogLine] = field(default_factory=list, repr=False)

    @property
    def duration_ms(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e6

    @property
    def error(self) -> bool:
        return self.status == "ERROR"

    @property
    def area(self) -> str:
        """``crossbridge.area``; else a contrib instrumentation's library (``sqlite3``); else the name's first part."""
        area = self.attributes.get("crossbridge.area")
        if area:
            return str(area)
        if self.scope.startswith("opentelemetry.instrumentation."):
            return self.scope.split(".")[2]
        return self.name.split(".", 1)[0] if "." in self.name else "other"

    @property
    def error_text(self) -> str:
        """``error.type: description`` for a failed span, else empty."""
        if not self.error:
            return ""
        kind = str(self.attributes.get("error.type", ""))
        if kind and self.message.startswith(kind):  # "FileNotFoundError: ..." already names it
            return self.message
        return ": ".join(part for part in (kind, self.message) if part) or "error"

    @property
    def retries(self) -> list[Event]:
        return [e for e in self.events if e.name == "retry"]


@dataclass
class MetricPoint:
    """One metric data point: ``value`` for sums and gauges, ``count``/``sum`` for histograms."""

    name: str
    unit: str
    kind: str
    attributes: dict[str, Any]
    time_ns: int
    value: float | None = None
    count: int | None = None
    sum: float | None = None
    resource: dict[str, Any] = field(default_factory=dict)
    run: str = ""


@dataclass
class Trace:
    """The spans of one trace ID, linked into trees (``roots``: spans whose parent is not in the file)."""

    trace_id: str
    spans: list[Span]
    roots: list[Span]

    @property
    def start_ns(self) -> int:
        return min(s.start_ns for s in self.spans)

    @property
    def end_ns(self) -> int:
        return max(s.end_ns for s in self.spans)

    @property
    def duration_ms(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e6

    @property
    def errors(self) -> int:
        return sum(1 for s in self.spans if s.error)

    @property
    def name(self) -> str:
        return self.roots[0].name if self.roots else self.spans[0].name

    @property
    def run(self) -> str:
        return self.spans[0].run


@dataclass
class Run:
    """The processes that wrote with one ``crossbridge.run.id`` (files without it: one unnamed run)."""

    id: str
    processes: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    start_ns: int = 0
    spans: int = 0


@dataclass
class Telemetry:
    """Everything read from one file."""

    source: str
    spans: list[Span] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    points: list[MetricPoint] = field(default_factory=list)
    bad_lines: int = 0
    traces: list[Trace] = field(default_factory=list)
    orphan_logs: list[LogLine] = field(default_factory=list)

    def link(self) -> Telemetry:
        """Build the traces and attach every log record to its span (idempotent)."""
        self.traces, self.orphan_logs = build_traces(self.spans, self.logs)
        return self

    def only_run(self, run: str) -> Telemetry:
        """The records of one run, linked."""
        return Telemetry(
            self.source,
            spans=[s for s in self.spans if s.run == run],
            logs=[entry for entry in self.logs if entry.run == run],
            points=[p for p in self.points if p.run == run],
            bad_lines=self.bad_lines,
        ).link()

    def runs(self) -> list[Run]:
        """The runs in the file, in the order they started."""
        runs: dict[str, Run] = {}
        items: list[Span | LogLine | MetricPoint] = [*self.spans, *self.logs, *self.points]
        for item in items:
            run = runs.setdefault(item.run, Run(item.run))
            resource = getattr(item, "resource", {})
            if resource.get("service.instance.id"):
                run.processes.add(str(resource["service.instance.id"]))
            if resource.get("service.name"):
                run.services.add(str(resource["service.name"]))
            start = getattr(item, "start_ns", getattr(item, "time_ns", 0))
            run.start_ns = min(run.start_ns or start, start)
            run.spans += isinstance(item, Span)
        return sorted(runs.values(), key=lambda r: r.start_ns)


def build_traces(spans: Iterable[Span], logs: Iterable[LogLine] = ()) -> tuple[list[Trace], list[LogLine]]:
    """Link spans into per-trace trees, children by start time; return the traces and the logs with no span."""
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        span.children = []
        span.logs = []
        by_trace[span.trace_id].append(span)
    index = {(s.trace_id, s.span_id): s for group in by_trace.values() for s in group}
    traces = []
    for trace_id, group in by_trace.items():
        roots: list[Span] = []
        for span in group:
            parent = index.get((trace_id, span.parent_id)) if span.parent_id else None
            (parent.children if parent is not None else roots).append(span)
        for span in group:
            span.children.sort(key=lambda s: s.start_ns)
        roots.sort(key=lambda s: s.start_ns)
        traces.append(Trace(trace_id, group, roots))
    orphans: list[LogLine] = []
    for log in logs:
        owner = index.get((log.trace_id, log.span_id))
        (owner.logs if owner is not None else orphans).append(log)
    for span in index.values():
        span.logs.sort(key=lambda entry: entry.time_ns)
    traces.sort(key=lambda t: t.start_ns)
    return traces, orphans
