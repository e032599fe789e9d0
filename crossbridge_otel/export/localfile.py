"""``CROSSBRIDGE_OTEL_LOCAL_OUTPUT``: telemetry in a file, one span, log record or metric point per line.

Each line is a complete OTLP JSON export request (the OTLP/JSON encoding, trace and span IDs in hex) holding
exactly one record with its resource and scope, so ``grep`` and ``jq`` work line by line, the collector's
``otlpjsonfile`` receiver can replay the file into a backend later, and ``crossbridge-otel show`` / ``report``
redraw it::

    jq -c '.resourceSpans[]?.scopeSpans[].spans[] | {name, status}' telemetry.jsonl

Runs: the file is appended to, never truncated, so nothing a run wrote is lost; every line's resource carries
``crossbridge.run.id`` (``CROSSBRIDGE_OTEL_RUN_ID``, which the distro sets at start-up and the processes
CrossBridge starts inherit). ``crossbridge-otel show`` lists the runs a file holds.

A file that cannot be written fails the export with the OS error: what was meant for it is counted as dropped,
and the exit line names the file and why (``Not a directory``, ``Permission denied``), with no traceback.
Imported only on an export worker thread.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

__all__ = ["RUN_ATTRIBUTE", "JsonLinesExporter", "split_request"]

RUN_ATTRIBUTE = "crossbridge.run.id"
_ID_KEYS = {"traceId", "spanId", "parentSpanId"}
_METRIC_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")
_lock = threading.Lock()
# Used when the distro did not set CROSSBRIDGE_OTEL_RUN_ID (a pipeline configured in code): one run per process.
_PROCESS_RUN = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"


class _Result:
    def __init__(self, name: str) -> None:
        self.name = name


def _hex_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: base64.b64decode(v).hex() if k in _ID_KEYS and isinstance(v, str) else _hex_ids(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hex_ids(v) for v in value]
    return value


def _with_run(resource: dict[str, Any], run: str) -> dict[str, Any]:
    attributes = [a for a in resource.get("attributes", []) if a.get("key") != RUN_ATTRIBUTE]
    attributes.append({"key": RUN_ATTRIBUTE, "value": {"stringValue": run}})
    return {**resource, "attributes": attributes}


def _metric_points(metric: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The metric once per data point, each copy holding just that point."""
    for kind in _METRIC_KINDS:
        data = metric.get(kind)
        if data is not None:
            for point in data.get("dataPoints", []):
                yield {**metric, kind: {**data, "dataPoints": [point]}}
            return


def split_request(request: dict[str, Any], run: str | None = None) -> Iterator[dict[str, Any]]:
    """One OTLP JSON request per record of ``request`` (spans, log records, metric data points)."""
    for top, scopes, records in (
        ("resourceSpans", "scopeSpans", "spans"),
        ("resourceLogs", "scopeLogs", "logRecords"),
        ("resourceMetrics", "scopeMetrics", "metrics"),
    ):
        for res in request.get(top, []):
            resource = _with_run(res.get("resource", {}), run) if run else res.get("resource", {})
            for scope in res.get(scopes, []):
                for record in scope.get(records, []):
                    singles = _metric_points(record) if records == "metrics" else iter([record])
                    for single in singles:
                        yield {top: [{**res, "resource": resource, scopes: [{**scope, records: [single]}]}]}


class JsonLinesExporter:
    """Appends one OTLP JSON line per span, log record or metric point of one signal to ``path``."""

    def __init__(self, path: str, signal: str) -> None:
        self.path = path
        self.signal = signal
        self.run = os.environ.get("CROSSBRIDGE_OTEL_RUN_ID", "").strip() or _PROCESS_RUN

    def export(self, batch: Any) -> Any:
        if self.signal == "traces":
            message = encode_spans(batch)
        elif self.signal == "logs":
            message = encode_logs(batch)
        else:
            message = encode_metrics(batch)
        request = _hex_ids(MessageToDict(message))
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in split_request(request, self.run))
        # An OSError (unwritable path, full disk) goes to the export queue, which counts the batch as dropped and
        # names this file and the error's words in its one line at exit; no traceback (that is at DEBUG only).
        self._append(text.encode("utf-8"))
        return _Result("SUCCESS")

    def _append(self, data: bytes) -> None:
        # One O_APPEND write per batch: lines from the processes of one run sharing the file never interleave.
        directory = os.path.dirname(self.path)
        if directory:
            try:
                os.makedirs(directory, exist_ok=True)
            except FileExistsError:  # a file where a directory should be: say that, not "File exists"
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), directory) from None
        with _lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
