"""Reading OTLP JSON lines: ours (one record a line), batched lines, the collector's numeric enums, bad lines."""

from __future__ import annotations

import json

from crossbridge_otel.view.read import parse_lines

_RESOURCE = {"attributes": [{"key": "service.name", "value": {"stringValue": "crossbridge"}},
                            {"key": "crossbridge.run.id", "value": {"stringValue": "r1"}}]}


def _span(span_id: str, parent: str = "", **extra) -> dict:
    return {"traceId": "ab" * 16, "spanId": span_id, "parentSpanId": parent, "name": f"s{span_id[-1]}",
            "startTimeUnixNano": "1000000", "endTimeUnixNano": "3000000", **extra}


def test_a_batched_line_yields_every_span_linked_into_one_tree():
    """A line holding several spans (older files, the collector's file exporter) gives each, parent above child."""
    line = json.dumps({"resourceSpans": [{"resource": _RESOURCE, "scopeSpans": [
        {"scope": {"name": "x"}, "spans": [_span("01" * 8), _span("02" * 8, "01" * 8)]}]}]})
    telemetry = parse_lines([line])
    [trace] = telemetry.traces
    assert [r.name for r in trace.roots] == ["s1"] and [c.name for c in trace.roots[0].children] == ["s2"]
    assert trace.roots[0].duration_ms == 2.0 and trace.run == "r1"


def test_numeric_enums_and_typed_values_are_read():
    """The collector writes kind/status/severity as numbers and int64 as strings: all read as names and ints."""
    span = _span("01" * 8, kind=3, status={"code": 2, "message": "boom"},
                 attributes=[{"key": "n", "value": {"intValue": "42"}},
                             {"key": "l", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}}])
    log = {"timeUnixNano": "2000000", "severityNumber": 17, "body": {"stringValue": "failed"},
           "traceId": "ab" * 16, "spanId": "01" * 8}
    lines = [json.dumps({"resourceSpans": [{"resource": _RESOURCE, "scopeSpans": [{"spans": [span]}]}]}),
             json.dumps({"resourceLogs": [{"resource": _RESOURCE, "scopeLogs": [{"logRecords": [log]}]}]})]
    telemetry = parse_lines(lines)
    [read] = telemetry.spans
    assert (read.kind, read.status, read.message) == ("CLIENT", "ERROR", "boom")
    assert read.attributes == {"n": 42, "l": ["a"]}
    assert [(entry.severity, entry.body) for entry in read.logs] == [("ERROR", "failed")]


def test_unreadable_lines_are_counted_and_skipped():
    """Lines that are not OTLP JSON objects are counted, the rest still read."""
    good = json.dumps({"resourceSpans": [{"resource": _RESOURCE, "scopeSpans": [{"spans": [_span("01" * 8)]}]}]})
    telemetry = parse_lines(["{not json", "[1, 2]", good, ""])
    assert telemetry.bad_lines == 2 and len(telemetry.spans) == 1
