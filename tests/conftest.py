"""Shared test set-up: the real CrossBridge on sys.path, strict mode, in-memory telemetry.

CrossBridge is found by ``crossbridge_target`` (``CROSSBRIDGE_SRC``, else ``../shared/crossbridge/src``). Without
it every test is skipped with the reason, except in CI, where the run stops at once: it must always be there.

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
from support.crossbridge_target import CROSSBRIDGE_SRC, REPO, SAMPLES, ci, missing_reason

pytest_plugins = ["support.postgres"]  # postgres_server / postgres_db for every test

if CROSSBRIDGE_SRC is not None and str(CROSSBRIDGE_SRC) not in sys.path:
    sys.path.insert(0, str(CROSSBRIDGE_SRC))
# The environment cannot leak into the tests: a proxy would carry their 127.0.0.1 traffic elsewhere, an inherited
# OTEL_* setting would point exporters elsewhere, CROSSBRIDGE_* variables would point CrossBridge at a real database
# or sidecar. (tests/run.sh installs before pytest starts, so the installs still use the proxy a user really has.)
_LEAKY_PROXIES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"}
for _name in list(os.environ):
    if (
        _name.lower() in _LEAKY_PROXIES
        or _name.startswith(("OTEL_", "TRACEPARENT", "TRACESTATE"))
        or (_name.startswith("CROSSBRIDGE_") and _name != "CROSSBRIDGE_SRC")
    ):
        del os.environ[_name]
# CrossBridge's orchestration package connects to a database at import unless this is false. Forced, not
# defaulted: a user's CROSSBRIDGE_HOOKS_ENABLED=true must not point the tests at their database.
os.environ["CROSSBRIDGE_HOOKS_ENABLED"] = "false"
# Bytecode of the CrossBridge tree (read-only, shared) and of child processes goes to one cache outside it.
os.environ.setdefault("PYTHONPYCACHEPREFIX", str(REPO / ".cache" / "pycache"))
sys.pycache_prefix = os.environ["PYTHONPYCACHEPREFIX"]
# Failures inside the distribution are re-raised under the project's own tests.
os.environ.setdefault("CROSSBRIDGE_OTEL_STRICT", "true")


def pytest_configure(config: pytest.Config) -> None:
    if CROSSBRIDGE_SRC is None and ci():
        raise pytest.UsageError(f"{missing_reason()} (CI: the real CrossBridge is the test target, never skipped)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CROSSBRIDGE_SRC is None:
        skip = pytest.mark.skip(reason=missing_reason())
        for item in items:
            item.add_marker(skip)


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
