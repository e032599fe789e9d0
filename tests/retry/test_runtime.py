"""RuntimeInstrumentor: CrossBridge's retry loop observed (not repeated), health registry, rate-limit denials."""

from __future__ import annotations

import sys

import pytest
import requests
from opentelemetry.trace import StatusCode
from retry_support import attempts_by_outcome, retry_events

from crossbridge_otel.instrumentors.runtime import RuntimeInstrumentor


@pytest.fixture
def runtime(telemetry):
    """core.runtime freshly imported under the runtime instrumentor (test providers)."""
    for name in [n for n in sys.modules if n == "core.runtime" or n.startswith("core.runtime.")]:
        del sys.modules[name]
    inst = RuntimeInstrumentor()
    inst.instrument(**telemetry.providers)
    import core.runtime

    yield core.runtime
    inst.uninstrument()
    for name in [n for n in sys.modules if n == "core.runtime" or n.startswith("core.runtime.")]:
        del sys.modules[name]


def _flaky(*failures):
    calls = []

    def func():
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return "ok"

    return func, calls


def test_crossbridge_retry_loop_attempts_become_events_without_multiplying(runtime, telemetry):
    """retry_with_backoff with two ConnectionErrors: 3 calls (not more), 2 retry events, retry.attempts 3."""
    func, calls = _flaky(ConnectionError("a"), ConnectionError("b"))
    policy = runtime.RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
    assert runtime.retry_with_backoff(func, policy) == "ok"
    assert len(calls) == 3
    span = telemetry.span("runtime.retry")
    events = retry_events(span)
    assert [(e["retry.attempt"], e["retry.will_retry"]) for e in events] == [(1, True), (2, True)]
    assert all(0.0 < e["retry.delay_s"] < 1.0 for e in events)
    assert span.attributes["retry.attempts"] == 3
    assert span.attributes["crossbridge.runtime.retry.max_attempts"] == 3
    assert attempts_by_outcome(telemetry, "runtime.retry") == {"retried": 2, "ok": 1}


def test_non_retryable_error_in_crossbridge_loop_is_one_final_event(runtime, telemetry):
    """requests' ConnectionError is not retried by CrossBridge's default policy: one call, one final event."""
    func, calls = _flaky(requests.exceptions.ConnectionError("refused"))
    with pytest.raises(requests.exceptions.ConnectionError):
        runtime.retry_with_backoff(func, runtime.RetryPolicy(base_delay=0.01))
    assert len(calls) == 1
    span = telemetry.span("runtime.retry")
    (event,) = retry_events(span)
    assert event["retry.will_retry"] is False
    assert span.status.status_code == StatusCode.ERROR


def test_with_database_retry_is_shown_broken_with_zero_attempts(runtime, telemetry):
    """CrossBridge's with_database_retry raises TypeError and never runs the body: retry.attempts 0."""
    ran = []

    @runtime.with_database_retry(retry_policy_name="quick")
    def body():
        ran.append(1)

    with pytest.raises(TypeError):
        body()
    assert ran == []
    span = telemetry.span("runtime.retry")
    assert span.attributes["retry.attempts"] == 0
    assert span.attributes["error.type"] == "TypeError"


def test_health_registry_checks_and_run_all_are_spans_with_the_gauge(runtime, telemetry):
    """run_all with one passing and one failing check: degraded ERROR span, two check spans, gauge 1 and 0."""
    registry = runtime.HealthRegistry()
    registry.register("db", runtime.SimpleHealthCheck("db", lambda: True))
    registry.register("ai", runtime.SimpleHealthCheck("ai", lambda: False))
    assert registry.run_all()["overall_status"] == "degraded"
    overall = telemetry.span("runtime.health.run_all")
    assert overall.attributes["crossbridge.runtime.health.overall_status"] == "degraded"
    assert overall.attributes["error.type"] == "health_degraded"
    checks = {s.attributes["crossbridge.runtime.health.check"]: s for s in telemetry.spans("runtime.health.check")}
    assert checks["ai"].status.status_code == StatusCode.ERROR
    assert checks["db"].status.status_code != StatusCode.ERROR
    assert all(c.parent.span_id == overall.context.span_id for c in checks.values())
    gauge = {p.attributes["check"]: p.value for p in telemetry.metric_points("crossbridge.health.status")}
    assert gauge == {"db": 1, "ai": 0}


def test_rate_limiter_denials_are_visible(runtime, telemetry):
    """RateLimiter.check: allowed calls are plain spans, a denial is ERROR rate_limited with an event."""
    limiter = runtime.RateLimiter()
    assert [limiter.check("transform", 2, 60) for _ in range(3)] == [True, True, False]
    spans = telemetry.spans("runtime.rate_limit.check")
    assert [s.attributes["crossbridge.runtime.rate_limit.allowed"] for s in spans] == [True, True, False]
    denied = spans[-1]
    assert denied.attributes["error.type"] == "rate_limited"
    assert [e.name for e in denied.events] == ["rate_limit.denied"]
    assert denied.events[0].attributes["rate_limit.key"] == "transform"
