"""``crossbridge-otel report FILE -o report.html``: one self-contained HTML file a CI job can attach.

The page holds everything it shows: the CSS and the small script are inline and its Content-Security-Policy
allows no network at all (``default-src 'none'``; the script is allowed by its hash). It opens with the totals
(spans, errors, retry events, drops), a table per area and per span name (count, errors, p50/p95), the failing
operations and the slowest; then each trace as a waterfall, failing traces first and then the slowest, every
span a row that expands to its attributes, events and log records. Past ``max_traces`` the rest are counted,
not drawn (the per-name table covers them).

Rendered by Jinja2 from ``templates/report.html.j2`` with autoescaping on: attribute values, log bodies and
error texts are data, never markup.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from crossbridge_otel.version import __version__
from crossbridge_otel.view.records import Span, Telemetry, Trace
from crossbridge_otel.view.stats import by_area, by_name, totals
from crossbridge_otel.view.terminal import fmt_ms

__all__ = ["MAX_TRACES", "render_html"]

MAX_TRACES = 200
_OPEN_TRACES = 10  # drawn expanded; the rest start folded (the page stays light)


@dataclass
class _Note:
    """An event or log record under its span: when (ms from the trace start), what kind, the text, attributes."""

    at_ms: float
    kind: str
    text: str
    attributes: list[tuple[str, str]]


@dataclass
class _Row:
    span: Span
    depth: int
    offset_pct: float
    width_pct: float
    offset_ms: float
    attributes: list[tuple[str, str]] = field(default_factory=list)
    notes: list[_Note] = field(default_factory=list)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _clock(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns / 1e9)) + f".{ns // 1_000_000 % 1000:03d} UTC"


def _rows(trace: Trace) -> list[_Row]:
    start, total = trace.start_ns, max(1, trace.end_ns - trace.start_ns)
    rows: list[_Row] = []

    def walk(span: Span, depth: int) -> None:
        offset = span.start_ns - start
        row = _Row(span, depth, 100 * offset / total, max(0.2, 100 * (span.end_ns - span.start_ns) / total),
                   offset / 1e6, sorted((k, _text(v)) for k, v in span.attributes.items()))
        for event in span.events:
            kind = "retry" if event.name == "retry" else "error" if event.name == "exception" else "event"
            attrs = sorted((k, _text(v)) for k, v in event.attributes.items())
            row.notes.append(_Note((event.time_ns - start) / 1e6, kind, event.name, attrs))
        for log in span.logs:
            level = "error" if log.severity.upper() in ("ERROR", "FATAL", "CRITICAL") else "log"
            attrs = sorted((k, _text(v)) for k, v in log.attributes.items())
            row.notes.append(_Note((log.time_ns - start) / 1e6, level, f"{log.severity} {log.body}", attrs))
        row.notes.sort(key=lambda note: note.at_ms)
        rows.append(row)
        for child in span.children:
            walk(child, depth + 1)

    for root in trace.roots:
        walk(root, 0)
    return rows


def _ordered(traces: list[Trace]) -> list[Trace]:
    """Failing traces first (most errors first), then the slowest."""
    return sorted(traces, key=lambda t: (-t.errors, -t.duration_ms))


def _asset(name: str) -> str:
    return resources.files("crossbridge_otel.view").joinpath(f"templates/{name}").read_text(encoding="utf-8")


def _script() -> tuple[str, str]:
    text = _asset("report.js")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return text, f"'sha256-{digest}'"


def render_html(telemetry: Telemetry, *, max_traces: int = MAX_TRACES) -> str:
    """The report for ``telemetry`` as one HTML document."""
    from jinja2 import Environment, PackageLoader, StrictUndefined
    from markupsafe import Markup

    env = Environment(
        loader=PackageLoader("crossbridge_otel.view", "templates"),
        autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["ms"] = fmt_ms
    env.filters["clock"] = _clock
    script, script_hash = _script()
    ordered = _ordered(telemetry.traces)
    drawn = ordered[:max_traces]
    spans = telemetry.spans
    return env.get_template("report.html.j2").render(
        source=telemetry.source,
        version=__version__,
        generated=_clock(time.time_ns()),
        totals=totals(telemetry),
        runs=telemetry.runs(),
        areas=by_area(spans),
        names=by_name(spans)[:40],
        name_count=len({s.name for s in spans}),
        failing=sorted((s for s in spans if s.error), key=lambda s: -s.duration_ms)[:25],
        failing_count=sum(1 for s in spans if s.error),
        slowest=sorted(spans, key=lambda s: -s.duration_ms)[:10],
        traces=[(trace, _rows(trace), i < _OPEN_TRACES) for i, trace in enumerate(drawn)],
        omitted=len(ordered) - len(drawn),
        orphan_logs=telemetry.orphan_logs[:200],
        orphan_count=len(telemetry.orphan_logs),
        style=Markup(_asset("report.css")),  # our own packaged files, inlined verbatim (not parsed as templates)
        script=Markup(script),  # allowed by its hash in the page's CSP
        script_hash=Markup(script_hash),  # quotes and base64 only
    )
