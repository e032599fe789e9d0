"""``crossbridge-otel show``: a file's traces in the terminal (and the exit summary's drawing).

Small runs are drawn as trees: each span with its duration and status, failures with ``error.type`` and
CrossBridge's text, ``exception``/``retry``/``rate_limit.wait`` events inline (``!``), and log records under the
span they were emitted in (``|``). Past ``max_spans`` spans the traces are folded into one line per span name
(count, errors, p50/p95/max), followed by the failing and the slowest traces; ``--full`` draws every tree and
``--trace ID`` one. Every line is cut to the terminal width.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from crossbridge_otel.view.records import Event, LogLine, Span, Telemetry, Trace
from crossbridge_otel.view.stats import NameStats, Totals, by_name, cost_line, totals

__all__ = ["aggregate_lines", "clip", "fmt_ms", "headline", "render", "trace_lines"]

MAX_SPANS = 300  # more than this and `show` aggregates (unless --full)
_LISTED = 5  # failing and slowest traces listed under an aggregate


def fmt_ms(ms: float) -> str:
    """A duration for people: ``0.42 ms``, ``12.3 ms``, ``4.56 s``."""
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.1f} ms"
    return f"{ms / 1000:.2f} s"


def clip(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(text.split()) if "\n" in text or "\r" in text else text
    return flat if len(flat) <= width else flat[: max(1, width - 1)] + "…"


def _clock(ns: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ns / 1e9)) + f".{ns // 1_000_000 % 1000:03d}"


def _seconds(value: object) -> str:
    try:
        return fmt_ms(float(value) * 1000)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "?"


def _event(event: Event) -> str:
    a = event.attributes
    if event.name == "retry":
        delay = a.get("retry.delay_s")
        nxt = f"; retry in {_seconds(delay)}" if a.get("retry.will_retry") and delay is not None else ""
        last = "" if a.get("retry.will_retry", True) else "; gave up"
        what = ": ".join(str(a[k]) for k in ("error.type", "exception.message") if a.get(k))
        return f"! retry {a.get('retry.attempt', '?')}/{a.get('retry.max_attempts', '?')} {what}{nxt}{last}"
    if event.name == "exception":
        return f"! exception {a.get('exception.type', '')}: {a.get('exception.message', '')}"
    if event.name == "rate_limit.wait":
        return f"~ rate limit {a.get('rate_limit.key', '')}: waited {_seconds(a.get('rate_limit.wait_s'))}"
    return f"* {event.name}"


def _log(entry: LogLine) -> str:
    return f"| {_clock(entry.time_ns)} {entry.severity:<5} {entry.body}"


def _span_line(span: Span) -> str:
    parts = [span.name, fmt_ms(span.duration_ms)]
    attempts = span.attributes.get("retry.attempts")
    if isinstance(attempts, int) and attempts > 1:
        parts.append(f"{attempts} attempts")
    if span.error:
        parts.append(f"ERROR {span.error_text}")
    return "  ".join(parts)


def trace_lines(trace: Trace, width: int, depth: int = 1) -> list[str]:
    """The trace's trees: one line per span, its events and logs beneath it."""
    lines: list[str] = []

    def walk(span: Span, level: int) -> None:
        pad = "  " * level
        lines.append(clip(f"{pad}- {_span_line(span)}", width))
        notes = sorted(
            [(e.time_ns, _event(e)) for e in span.events] + [(entry.time_ns, _log(entry)) for entry in span.logs],
            key=lambda pair: pair[0],
        )
        lines.extend(clip(f"{pad}    {text}", width) for _, text in notes)
        for child in span.children:
            walk(child, level + 1)

    for root in trace.roots:
        walk(root, depth)
    return lines


def _trace_title(trace: Trace) -> str:
    errors = f"  {trace.errors} error(s)" if trace.errors else ""
    return f"trace {trace.trace_id}  {trace.name}  {fmt_ms(trace.duration_ms)}  {len(trace.spans)} spans{errors}"


def aggregate_lines(stats: Sequence[NameStats], width: int, limit: int = 40) -> list[str]:
    """One line per span name: count, errors, p50, p95, max (the most time-consuming first)."""
    name_width = min(48, max((len(s.name) for s in stats[:limit]), default=9))
    head = f"  {'span name':<{name_width}}  {'count':>7}  {'errors':>6}  {'p50':>9}  {'p95':>9}  {'max':>9}"
    lines = [clip(head, width)]
    for s in stats[:limit]:
        lines.append(clip(
            f"  {clip(s.name, name_width):<{name_width}}  {s.count:>7}  {s.errors:>6}  "
            f"{fmt_ms(s.p50):>9}  {fmt_ms(s.p95):>9}  {fmt_ms(s.max_ms):>9}", width))
    if len(stats) > limit:
        lines.append(f"  ... {len(stats) - limit} more span names")
    return lines


def headline(numbers: Totals, source: str) -> str:
    runs = f"{numbers.runs} run{'s' if numbers.runs != 1 else ''}, {numbers.processes} process(es), "
    extra = [f"{numbers.errors} error(s)"] if numbers.errors else []
    if numbers.retries:
        extra.append(f"{numbers.retries} retry event(s)")
    spans = f"{numbers.spans} spans" + (f" ({', '.join(extra)})" if extra else "")
    line = (f"{source}: {runs}{numbers.traces} trace(s), {spans}, {numbers.logs} log records, "
            f"{numbers.points} metric points")
    if numbers.dropped:
        line += "; dropped: " + ", ".join(f"{n} {signal}" for signal, n in sorted(numbers.dropped.items()))
    if numbers.bad_lines:
        line += f"; {numbers.bad_lines} unreadable line(s) skipped"
    if numbers.model_calls:
        line += "; " + cost_line(numbers.model_calls, numbers.cost_usd)
    return line


def _listing(title: str, traces: Iterable[Trace], width: int) -> list[str]:
    chosen = list(traces)
    if not chosen:
        return []
    lines = [title]
    for trace in chosen[:_LISTED]:
        worst = next((s for s in trace.spans if s.error), None)
        why = f"  ERROR {worst.name}: {worst.error_text}" if worst else ""
        lines.append(clip(f"  {trace.trace_id}  {trace.name}  {fmt_ms(trace.duration_ms)}{why}", width))
    return lines


def _folded(telemetry: Telemetry, width: int) -> list[str]:
    stats = by_name(telemetry.spans)
    lines = [
        f"folded {len(telemetry.traces)} trace(s) ({len(telemetry.spans)} spans) into {len(stats)} span names "
        "(--full draws every tree, --trace ID one trace):",
        *aggregate_lines(stats, width),
    ]
    failing = [t for t in telemetry.traces if t.errors]
    lines += _listing(f"failing traces ({len(failing)}):", failing, width)
    slowest = sorted(telemetry.traces, key=lambda t: -t.duration_ms)
    lines += _listing("slowest traces:", slowest, width)
    return lines


def render(
    telemetry: Telemetry, *, width: int = 120, full: bool = False, max_spans: int = MAX_SPANS,
    trace_id: str = "", last_run: bool = False,
) -> str:
    """What ``crossbridge-otel show`` prints."""
    runs = telemetry.runs()
    lines = [clip(headline(totals(telemetry), telemetry.source), width)]
    if len(runs) > 1:
        lines += [clip(f"  run {r.id or '(no run id)'}: started {_clock(r.start_ns)} UTC, {len(r.processes)} "
                       f"process(es), {r.spans} spans", width) for r in runs]
    if last_run and runs:
        telemetry = telemetry.only_run(runs[-1].id)
        lines.append(f"showing the last run only: {runs[-1].id or '(no run id)'}")
    traces = telemetry.traces
    if trace_id:
        traces = [t for t in traces if t.trace_id.startswith(trace_id.lower())]
        if not traces:
            lines.append(f"no trace with an ID starting {trace_id!r}")
    elif not full and len(telemetry.spans) > max_spans:
        return "\n".join([*lines, "", *_folded(telemetry, width)]) + "\n"
    for trace in traces:
        lines += ["", clip(_trace_title(trace), width), *trace_lines(trace, width)]
    if telemetry.orphan_logs and not trace_id:
        lines += ["", f"log records outside any span ({len(telemetry.orphan_logs)}):"]
        lines += [clip(f"  {_log(entry)}", width) for entry in telemetry.orphan_logs[:50]]
        if len(telemetry.orphan_logs) > 50:
            lines.append(f"  ... {len(telemetry.orphan_logs) - 50} more")
    return "\n".join(lines) + "\n"
