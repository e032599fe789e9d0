"""Read an OTLP JSON lines file (``CROSSBRIDGE_OTEL_LOCAL_OUTPUT``, or the collector's file exporter) into records.

Any number of records per line is accepted (one per line is what the distribution writes; older files and the
collector's hold a batch per line). Enum fields may be names (``SPAN_KIND_CLIENT``, what protobuf's JSON mapping
writes) or numbers (what the collector writes); IDs are hex. A line that is not an OTLP JSON object is counted
in ``bad_lines`` and skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from crossbridge_otel.view.records import Event, LogLine, MetricPoint, Span, Telemetry

__all__ = ["RUN_ATTRIBUTE", "load", "parse_lines", "plain_value"]

RUN_ATTRIBUTE = "crossbridge.run.id"  # the same key crossbridge_otel.export.localfile writes
_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUS = ("UNSET", "OK", "ERROR")
_SEVERITY = {1: "TRACE", 5: "DEBUG", 9: "INFO", 13: "WARN", 17: "ERROR", 21: "FATAL"}


def plain_value(value: dict[str, Any]) -> Any:
    """An OTLP ``AnyValue`` as a plain Python value (int64s arrive as strings in OTLP JSON)."""
    if not isinstance(value, dict) or not value:
        return None
    kind, raw = next(iter(value.items()))
    if kind == "intValue":
        return int(raw)
    if kind == "doubleValue":
        return float(raw)
    if kind == "arrayValue":
        return [plain_value(v) for v in raw.get("values", [])]
    if kind == "kvlistValue":
        return _attributes(raw.get("values", []))
    return raw


def _attributes(pairs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {p.get("key", ""): plain_value(p.get("value", {})) for p in pairs}


def _enum(raw: Any, names: tuple[str, ...], prefix: str, default: str) -> str:
    if isinstance(raw, int):
        return names[raw] if 0 <= raw < len(names) else str(raw)
    return str(raw).removeprefix(prefix) if raw else default


def _severity(record: dict[str, Any]) -> str:
    if record.get("severityText"):
        return str(record["severityText"])
    raw = record.get("severityNumber", 0)
    if isinstance(raw, str):
        return raw.removeprefix("SEVERITY_NUMBER_").rstrip("234") or "UNSPECIFIED"
    return next((name for floor, name in sorted(_SEVERITY.items(), reverse=True) if raw >= floor), "UNSPECIFIED")


def _span(raw: dict[str, Any], resource: dict[str, Any], scope: str, run: str) -> Span:
    status = raw.get("status", {})
    return Span(
        trace_id=raw.get("traceId", ""),
        span_id=raw.get("spanId", ""),
        parent_id=raw.get("parentSpanId", ""),
        name=raw.get("name", ""),
        start_ns=int(raw.get("startTimeUnixNano", 0)),
        end_ns=int(raw.get("endTimeUnixNano", 0)),
        status=_enum(status.get("code"), _STATUS, "STATUS_CODE_", "UNSET"),
        message=status.get("message", ""),
        kind=_enum(raw.get("kind"), _KINDS, "SPAN_KIND_", "INTERNAL"),
        attributes=_attributes(raw.get("attributes", [])),
        events=[
            Event(e.get("name", ""), int(e.get("timeUnixNano", 0)), _attributes(e.get("attributes", [])))
            for e in raw.get("events", [])
        ],
        resource=resource,
        scope=scope,
        run=run,
    )


def _log(raw: dict[str, Any], scope: str, run: str) -> LogLine:
    body = plain_value(raw.get("body", {}))
    return LogLine(
        time_ns=int(raw.get("timeUnixNano") or raw.get("observedTimeUnixNano") or 0),
        severity=_severity(raw),
        body="" if body is None else str(body),
        attributes=_attributes(raw.get("attributes", [])),
        trace_id=raw.get("traceId", ""),
        span_id=raw.get("spanId", ""),
        scope=scope,
        run=run,
    )


def _points(metric: dict[str, Any], resource: dict[str, Any], run: str) -> list[MetricPoint]:
    points = []
    for kind in ("sum", "gauge", "histogram", "exponentialHistogram", "summary"):
        for dp in metric.get(kind, {}).get("dataPoints", []):
            value = dp.get("asDouble", dp.get("asInt"))
            points.append(MetricPoint(
                name=metric.get("name", ""), unit=metric.get("unit", ""), kind=kind,
                attributes=_attributes(dp.get("attributes", [])), time_ns=int(dp.get("timeUnixNano", 0)),
                value=None if value is None else float(value),
                count=int(dp["count"]) if "count" in dp else None,
                sum=float(dp["sum"]) if "sum" in dp else None,
                resource=resource, run=run,
            ))
    return points


def _add(telemetry: Telemetry, request: dict[str, Any]) -> None:
    for top, scopes, records in (
        ("resourceSpans", "scopeSpans", "spans"),
        ("resourceLogs", "scopeLogs", "logRecords"),
        ("resourceMetrics", "scopeMetrics", "metrics"),
    ):
        for res in request.get(top, []):
            resource = _attributes(res.get("resource", {}).get("attributes", []))
            run = str(resource.get(RUN_ATTRIBUTE, ""))
            for scope_block in res.get(scopes, []):
                scope = scope_block.get("scope", {}).get("name", "")
                for raw in scope_block.get(records, []):
                    if records == "spans":
                        telemetry.spans.append(_span(raw, resource, scope, run))
                    elif records == "logRecords":
                        telemetry.logs.append(_log(raw, scope, run))
                    else:
                        telemetry.points.extend(_points(raw, resource, run))


def parse_lines(lines: Iterable[str], source: str = "") -> Telemetry:
    """Records from OTLP JSON lines, linked into traces."""
    telemetry = Telemetry(source)
    for line in lines:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
            _add(telemetry, request)
        except (ValueError, TypeError, AttributeError, KeyError):
            telemetry.bad_lines += 1
    return telemetry.link()


def load(path: str | Path) -> Telemetry:
    """Read ``path`` (raises ``OSError`` if it cannot be read)."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        return parse_lines(lines, str(path))
