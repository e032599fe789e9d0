"""The repository's collector-config.yaml, checked by a real OpenTelemetry Collector and a real Jaeger v2.

(a) the exact file validates (`otelcol validate`), with its defaults and with the test environment;
(b) a broken copy is rejected with a message naming the problem;
(c) a live run: OTLP from the OpenTelemetry Python SDK -> collector (this file, on test ports) -> Jaeger
    (traces) and the file exporter (logs, metrics); credentials are scrubbed by the collector on the way.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import pipeline
import pytest

pytestmark = pytest.mark.pipeline

CONFIG_TEXT = pipeline.COLLECTOR_CONFIG.read_text()
TRACES_EXPORTERS = "exporters: [otlp_grpc/jaeger, file/local]"


# ----------------------------------------------------------------------------------------------- (a) validate
def test_repo_config_validates_with_defaults(pipeline_binaries: pipeline.Binaries, tmp_path: Path) -> None:
    """No environment variables set at all: the defaults alone must give a valid configuration."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTELCOL_", "JAEGER_", "LOGS_OTLP", "METRICS_OTLP"))
    }
    proc_env = {"PATH": env.get("PATH", "/usr/bin:/bin"), "HOME": env.get("HOME", str(tmp_path))}
    rc, out = _validate_clean(pipeline_binaries.otelcol, pipeline.COLLECTOR_CONFIG, proc_env)
    assert rc == 0, out


def test_repo_config_validates_with_test_env(collector: pipeline.Collector) -> None:
    rc, out = collector.validate()
    assert rc == 0, out


def _validate_clean(binary: Path, config: Path, env: dict[str, str]) -> tuple[int, str]:
    import subprocess

    proc = subprocess.run(
        [str(binary), "validate", f"--config={config}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


# ----------------------------------------------------------------------------------------------- (b) broken
@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        pytest.param(
            lambda text: text.replace(TRACES_EXPORTERS, "exporters: [otlp_grpc/jaeger, file/local, nosuch/exporter]"),
            ['references exporter "nosuch/exporter" which is not configured'],
            id="pipeline-references-unconfigured-exporter",
        ),
        pytest.param(
            lambda text: text.replace("exporters:\n", "exporters:\n  nosuchtype/x:\n    endpoint: x\n", 1).replace(
                TRACES_EXPORTERS, "exporters: [otlp_grpc/jaeger, file/local, nosuchtype/x]"
            ),
            ['unknown type: "nosuchtype"'],
            id="unknown-exporter-type",
        ),
    ],
)
def test_broken_config_is_rejected(
    collector: pipeline.Collector, tmp_path: Path, mutation: Any, expected: list[str]
) -> None:
    assert TRACES_EXPORTERS in CONFIG_TEXT, "test needs updating: traces pipeline exporters changed"
    broken = tmp_path / "broken-collector-config.yaml"
    broken.write_text(mutation(CONFIG_TEXT))
    assert broken.read_text() != CONFIG_TEXT
    rc, out = collector.validate(broken)
    assert rc != 0, f"broken config was accepted:\n{out}"
    assert "Error" in out or "error" in out, out
    for word in expected:
        assert word in out, f"validation message does not name {word!r}:\n{out}"


# ----------------------------------------------------------------------------------------------- (c) live run
SECRET_VALUES = ("hunter2", "s3cr3t", "secret123", "abc123tok", "eyJhbGciOiJIUzI1NiJ9.payload")


def _send_signals(endpoint: str, service: str) -> tuple[str, str, str]:
    """One span (with an event), one log record and one metric over OTLP/gRPC with the real SDK exporters."""
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    resource = Resource.create({"service.name": service})
    marker = uuid.uuid4().hex

    tp = TracerProvider(resource=resource)
    tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10)))
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True, timeout=10)))
    tracer = tp.get_tracer("crossbridge.e2e", "0.0.1")
    otel_logger = lp.get_logger("crossbridge.e2e")
    body = f"e2e log {marker}"
    with tracer.start_as_current_span("coverage.parse") as span:
        span.set_attribute("crossbridge.area", "coverage")
        span.set_attribute("e2e.marker", marker)
        span.set_attribute("gen_ai.usage.input_tokens", 42)
        span.set_attribute("db.connection_string", "Server=db;User Id=app;password=secret123;Port=5432")
        span.set_attribute("url.full", "https://bob:s3cr3t@repo.example/x?token=abc123tok&page=2")
        span.set_attribute("password", "hunter2")
        span.set_attribute("http.request.header.authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.payload")
        span.add_event(
            "retry",
            {
                "retry.attempt": 1,
                "retry.will_retry": True,
                "exception.message": "login failed for bob password=hunter2",
            },
        )
        # emitted inside the span: the record carries its trace and span ids
        otel_logger.emit(
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body=f"{body} api_key=abc123tok",
            attributes={"crossbridge.category": "testing", "token": "abc123tok"},
        )
        trace_id = f"{span.get_span_context().trace_id:032x}"
    assert tp.force_flush(10_000)
    tp.shutdown()
    assert lp.force_flush(10_000)
    lp.shutdown()

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True, timeout=10), export_interval_millis=3_600_000
    )
    mp = MeterProvider(resource=resource, metric_readers=[reader])
    counter = mp.get_meter("crossbridge.e2e").create_counter("crossbridge.e2e.checks", unit="1")
    counter.add(3, {"outcome": "ok", "marker": marker})
    assert mp.force_flush(10_000)
    mp.shutdown()
    return trace_id, marker, body


def _tags(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in items}


def _wait_file(collector: pipeline.Collector, key: str, needle: str, timeout: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = [r for r in collector.file_records() if key in r and needle in str(r)]
        if hits:
            return hits
        time.sleep(0.3)
    raise AssertionError(
        f"no {key} containing {needle!r} in {collector.file_path} after {timeout}s:\n"
        f"{collector.file_path.read_text()[-4000:] if collector.file_path.exists() else '(none)'}"
    )


def test_live_pipeline_sdk_to_collector_to_jaeger(jaeger: pipeline.Jaeger, collector: pipeline.Collector) -> None:
    collector.start(jaeger=jaeger)  # logs/metrics backend: a dead port, the config has to cope with that
    collector.wait_ready(timeout=60)
    service = f"crossbridge-e2e-{uuid.uuid4().hex[:8]}"

    trace_id, marker, log_body = _send_signals(collector.otlp_grpc_endpoint, service)

    # --- the trace, as Jaeger stored it
    traces = jaeger.wait_for_traces(service, timeout=30)
    assert len(traces) == 1, traces
    trace = jaeger.trace(trace_id)
    assert trace is not None, f"trace {trace_id} not found by id"
    (span,) = [s for s in trace["spans"] if s["operationName"] == "coverage.parse"]
    tags = _tags(span["tags"])
    assert trace["processes"][span["processID"]]["serviceName"] == service
    assert tags["crossbridge.area"] == "coverage"
    assert tags["e2e.marker"] == marker
    assert tags["gen_ai.usage.input_tokens"] == 42  # a count: not mistaken for a token
    assert tags["otel.scope.name"] == "crossbridge.e2e"
    # redaction by the collector (the SDK sent these in clear text)
    assert "password" not in tags
    assert "http.request.header.authorization" not in tags
    assert tags["db.connection_string"] == "Server=db;User Id=app;password=***;Port=5432"
    assert tags["url.full"] == "https://REDACTED:REDACTED@repo.example/x?token=***&page=2"
    # the span event, as a Jaeger log
    (event,) = span["logs"]
    fields = _tags(event["fields"])
    assert fields["event"] == "retry"
    assert fields["retry.attempt"] == 1
    assert fields["retry.will_retry"] is True
    assert fields["exception.message"] == "login failed for bob password=***"
    text = str(trace)
    for secret in SECRET_VALUES:
        assert secret not in text, f"{secret!r} reached Jaeger"

    # --- the log record and the metric, in the file exporter's OTLP JSON lines
    logs = _wait_file(collector, "resourceLogs", marker)
    metrics = _wait_file(collector, "resourceMetrics", marker)
    records = [lr for r in logs for rl in r["resourceLogs"] for sl in rl["scopeLogs"] for lr in sl["logRecords"]]
    (record,) = [lr for lr in records if log_body in lr["body"].get("stringValue", "")]
    assert record["body"]["stringValue"] == f"{log_body} api_key=***"
    assert record["severityText"] == "WARN"
    assert record["traceId"] == trace_id  # log/trace correlation survives the collector
    attrs = {a["key"]: a["value"] for a in record.get("attributes", [])}
    assert attrs["crossbridge.category"] == {"stringValue": "testing"}
    assert "token" not in attrs
    names = [
        m["name"] for r in metrics for rm in r["resourceMetrics"] for sm in rm["scopeMetrics"] for m in sm["metrics"]
    ]
    assert "crossbridge.e2e.checks" in names
    # force_flush and shutdown may each export the (cumulative) sum: every copy must say 3
    points = [
        p
        for r in metrics
        for rm in r["resourceMetrics"]
        for sm in rm["scopeMetrics"]
        for m in sm["metrics"]
        if m["name"] == "crossbridge.e2e.checks"
        for p in m["sum"]["dataPoints"]
    ]
    assert points
    assert {int(p["asInt"]) for p in points} == {3}
    file_text = collector.file_path.read_text()
    for secret in SECRET_VALUES:
        assert secret not in file_text, f"{secret!r} reached the file exporter"

    # the dead logs/metrics backend did not take the collector down
    status, _ = pipeline.http_get(collector.health_url)
    assert status == 200
    assert collector.running
