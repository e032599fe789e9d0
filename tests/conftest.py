"""Shared test set-up: CrossBridge-shaped fixture modules on sys.path, strict mode, in-memory telemetry.

The ``telemetry`` fixture builds real SDK providers with in-memory exporters and injects them
(``tracer_provider=`` / ``logger_provider=`` / ``meter_provider=``), so no test touches the globals.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures" / "crossbridge"
SAMPLES = TESTS / "samples"

if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))
# CrossBridge's orchestration package connects to a database at import unless this is false (TARGETS §0.2).
os.environ.setdefault("CROSSBRIDGE_HOOKS_ENABLED", "false")
# Failures inside the distribution are re-raised under the project's own tests.
os.environ.setdefault("CROSSBRIDGE_OTEL_STRICT", "true")


@dataclass
class Telemetry:
    """Real SDK providers wired to in-memory exporters."""

    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    meter_provider: MeterProvider
    spans_exporter: InMemorySpanExporter
    logs_exporter: InMemoryLogRecordExporter
    metric_reader: InMemoryMetricReader

    @property
    def providers(self) -> dict:
        return {
            "tracer_provider": self.tracer_provider,
            "logger_provider": self.logger_provider,
            "meter_provider": self.meter_provider,
        }

    def spans(self, name: str | None = None):
        spans = self.spans_exporter.get_finished_spans()
        return [s for s in spans if name is None or s.name == name]

    def span(self, name: str):
        found = self.spans(name)
        assert len(found) == 1, f"expected one {name!r} span, got {[s.name for s in self.spans()]}"
        return found[0]

    def logs(self):
        return [r.log_record for r in self.logs_exporter.get_finished_logs()]

    def metric_points(self, metric_name: str):
        data = self.metric_reader.get_metrics_data()
        points = []
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == metric_name:
                        points.extend(metric.data.data_points)
        return points


@pytest.fixture
def telemetry() -> Telemetry:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Telemetry(tracer_provider, logger_provider, meter_provider, spans, logs, reader)
    tracer_provider.shutdown()
    logger_provider.shutdown()
    meter_provider.shutdown()


@pytest.fixture
def samples() -> Path:
    return SAMPLES
