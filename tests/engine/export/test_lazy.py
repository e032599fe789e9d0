"""Lazy providers: nothing built at start-up, the metrics and logs APIs not even imported; their stand-ins are the
global providers from the moment those APIs are first imported."""

from __future__ import annotations

import pytest
from support.engine import run_instrumented

from crossbridge_otel.export.lazy import LazyPipeline

_QUIET = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
          "CROSSBRIDGE_OTEL_STRICT": "true"}


def _run(code: str) -> list[str]:
    done = run_instrumented(code, **_QUIET)
    assert done.returncode == 0 and "crossbridge-otel" not in done.stderr, done.stderr
    return done.stdout.split()


def test_start_up_imports_neither_the_metrics_nor_the_logs_api_nor_the_sdk():
    """`python -c` under the distribution has no opentelemetry.metrics, opentelemetry._logs or SDK module loaded."""
    code = ("import sys; print(*[m for m in ('opentelemetry.metrics', 'opentelemetry._logs', 'opentelemetry.sdk') "
            "if m in sys.modules] or ['none'])")
    assert _run(code) == ["none"]


def test_the_metrics_api_gets_the_stand_in_when_first_imported():
    """The first `from opentelemetry import metrics` finds our provider installed; its first meter is the SDK's."""
    code = ("from opentelemetry import metrics\n"
            "print(type(metrics.get_meter_provider()).__name__)\n"
            "print(type(metrics.get_meter('probe')).__module__)\n")
    name, meter_module = _run(code)
    assert name == "LazyMeterProvider"
    assert meter_module.startswith("opentelemetry.sdk.metrics")


def test_the_logs_api_gets_the_stand_in_when_first_imported():
    """The first `from opentelemetry import _logs` finds our provider installed; its first logger is the SDK's."""
    code = ("from opentelemetry import _logs\n"
            "print(type(_logs.get_logger_provider()).__name__)\n"
            "print(type(_logs.get_logger('probe')).__module__)\n")
    name, logger_module = _run(code)
    assert name == "LazyLoggerProvider"
    assert logger_module.startswith("opentelemetry.sdk._logs")


def test_the_apis_first_imported_while_the_pipeline_is_built_get_the_stand_ins():
    """A first tracer builds the pipeline, whose SDK imports both APIs then: each gets its stand-in, no failure."""
    code = ("from opentelemetry import trace\n"
            "trace.get_tracer('probe')\n"
            "from opentelemetry import _logs, metrics\n"
            "print(type(metrics.get_meter_provider()).__name__, type(_logs.get_logger_provider()).__name__)\n")
    assert _run(code) == ["LazyMeterProvider", "LazyLoggerProvider"]


@pytest.mark.parametrize("signal", ["meter_provider", "logger_provider"])
def test_a_stand_in_is_made_once_and_builds_nothing(signal):
    """Asking for a stand-in twice gives the same object, and the pipeline is not built by asking."""
    built: list[int] = []
    lazy = LazyPipeline(lambda: built.append(1))
    first = getattr(lazy, signal)
    assert getattr(lazy, signal) is first
    assert built == [] and lazy.built is None
