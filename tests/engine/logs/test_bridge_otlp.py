"""One bridged record through the real OTLP/HTTP log exporter to a receiver on 127.0.0.1."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

from crossbridge_otel.logs.bridge import LogBridge


class _Receiver(BaseHTTPRequestHandler):
    """Accepts POST /v1/logs and keeps the decoded ExportLogsServiceRequest."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = ExportLogsServiceRequest()
        request.ParseFromString(body)
        self.server.requests.append((self.path, request))
        reply = ExportLogsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    """A small OTLP/HTTP logs receiver on an ephemeral port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _value(any_value):
    return getattr(any_value, any_value.WhichOneof("value"))


def test_record_arrives_over_otlp_with_its_category(receiver, cb, unique, monkeypatch):
    """A CrossBridgeLogger record reaches the OTLP receiver with crossbridge.category and its fields."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}/v1/logs"
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, timeout=5)))
    bridge = LogBridge(provider)
    bridge.install()
    try:
        name = unique("otlp")
        cb.get_logger(name, cb.LogCategory.MIGRATION).success("over the wire", files=4)
    finally:
        bridge.uninstall()
        provider.shutdown()
    records = [
        (scope_logs.scope.name, record)
        for path, request in receiver.requests if path == "/v1/logs"
        for resource_logs in request.resource_logs
        for scope_logs in resource_logs.scope_logs
        for record in scope_logs.log_records
    ]
    assert len(records) == 1
    scope, record = records[0]
    attributes = {kv.key: _value(kv.value) for kv in record.attributes}
    assert scope == f"crossbridge.{name}"
    assert record.body.string_value == "over the wire [files=4]"
    assert (record.severity_number, record.severity_text) == (10, "SUCCESS")
    assert attributes["crossbridge.category"] == "migration"
    assert attributes["crossbridge.log.files"] == 4
