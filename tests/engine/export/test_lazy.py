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


@pytest.mark.parametrize(("api", "getter", "stand_in", "sdk_module"), [
    ("metrics", "get_meter", "LazyMeterProvider", "opentelemetry.sdk.metrics"),
    ("_logs", "get_logger", "LazyLoggerProvider", "opentelemetry.sdk._logs"),
])
def test_an_api_gets_its_stand_in_when_first_imported(api, getter, stand_in, sdk_module):
    """The first `from opentelemetry import <api>` finds our provider installed; what it first gives is the SDK's."""
    provider = "get_meter_provider" if api == "metrics" else "get_logger_provider"
    code = (f"from opentelemetry import {api}\n"
            f"print(type({api}.{provider}()).__name__)\n"
            f"print(type({api}.{getter}('probe')).__module__)\n")
    name, module = _run(code)
    assert name == stand_in
    assert module.startswith(sdk_module)


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
