"""A local OTLP JSON lines file: one export request per line, IDs in hex as the OTLP JSON spec says.

Used for the no-collector default of the demo (``CROSSBRIDGE_OTEL_LOCAL_OUTPUT``) and readable with the
collector's own ``otlpjsonfile`` receiver. Imported only on an export worker thread.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

__all__ = ["JsonLinesExporter"]

_ID_KEYS = {"traceId", "spanId", "parentSpanId"}
_lock = threading.Lock()


class _Result:
    name = "SUCCESS"


def _hex_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: base64.b64decode(v).hex() if k in _ID_KEYS and isinstance(v, str) else _hex_ids(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hex_ids(v) for v in value]
    return value


class JsonLinesExporter:
    """Appends OTLP JSON export requests for one signal to ``path``."""

    def __init__(self, path: str, signal: str) -> None:
        self.path = path
        self.signal = signal

    def export(self, batch: Any) -> Any:
        if self.signal == "traces":
            message = encode_spans(batch)
        elif self.signal == "logs":
            message = encode_logs(batch)
        else:
            message = encode_metrics(batch)
        line = json.dumps(_hex_ids(MessageToDict(message)), separators=(",", ":"))
        with _lock, open(self.path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
        return _Result()

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
