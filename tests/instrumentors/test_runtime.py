"""RuntimeInstrumentor: CrossBridge's retry loop observed (not repeated), health registry, rate-limit denials."""

from __future__ import annotations

import sys

import pytest
import requests
from opentelemetry.trace import StatusCode
from support.retry import attempts_by_outcome, retry_events

from crossbridge_otel.instrumentors.runtime import RuntimeInstrumentor
from crossbridge_otel.settings import load as load_settings


def _forget_runtime() -> None:
    for name in [n for n in sys.modules if n == "core.runtime" or n.startswith("core.runtime.")]:
        del sys.modules[name]


@pytest.fixture
def instrumented(telemetry):
    """A factory: core.runtime freshly imported under the runtime instrumentor (test providers, given env)."""
    made = []

    def make(**environ):
        _forget_runtime()
        inst = RuntimeInstrumentor()
        inst.instrument(settings=load_settings(environ=environ, warn=False), **telemetry.providers)
        made.append(inst)
        import core.runtime

        return core.runtime

    yield make
    for inst in made:
        inst.uninstrument()
    _forget_runtime()


@pytest.fixture
def runtime(instrumented):
    """core.runtime under the runtime instrumentor with default settings."""
    return instrumented()


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
    assert all(e["retry.delay_s"] > 0.0 for e in events)  # measured: CrossBridge really slept
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


def test_rate_limit_checks_are_counted_on_the_enclosing_span(runtime, telemetry):
    """RateLimiter.check under a span: no span per check; counts and a rate_limit.denied event on the span."""
    limiter = runtime.RateLimiter()
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span("request"):
        assert [limiter.check("transform", 2, 60) for _ in range(3)] == [True, True, False]
    assert not telemetry.spans("runtime.rate_limit.check")
    request = telemetry.span("request")
    assert request.attributes["crossbridge.runtime.rate_limit.check.count"] == 3
    assert request.attributes["crossbridge.runtime.rate_limit.check.denied"] == 1
    (event,) = request.events
    assert event.name == "rate_limit.denied"
    assert dict(event.attributes) == {"rate_limit.key": "transform", "rate_limit.capacity": 2,
                                      "rate_limit.window_s": 60}
    assert request.status.status_code == StatusCode.UNSET


def test_rate_limit_checks_from_threads_add_up(runtime, telemetry):
    """Checks made on pool threads under one span are all counted there (no lost updates)."""
    from concurrent.futures import ThreadPoolExecutor

    from opentelemetry.instrumentation.threading import ThreadingInstrumentor

    limiter = runtime.RateLimiter()
    interval = sys.getswitchinterval()
    ThreadingInstrumentor().instrument()  # the context follows into the pool, as under opentelemetry-instrument
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: a lost update would show
    try:
        with telemetry.tracer_provider.get_tracer("test").start_as_current_span("batch"):
            with ThreadPoolExecutor(8) as pool:
                allowed = list(pool.map(lambda i: limiter.check("k", 1500, 3600), range(2000)))
    finally:
        sys.setswitchinterval(interval)
        ThreadingInstrumentor().uninstrument()
    batch = telemetry.span("batch")
    assert allowed.count(True) == 1500
    assert batch.attributes["crossbridge.runtime.rate_limit.check.count"] == 2000
    assert batch.attributes["crossbridge.runtime.rate_limit.check.denied"] == 500


def test_rate_limit_check_without_a_span_records_nothing(runtime, telemetry):
    """With no enclosing span a check is a plain call: same answers, no telemetry."""
    limiter = runtime.RateLimiter()
    assert [limiter.check("k", 1, 60) for _ in range(2)] == [True, False]
    assert telemetry.spans() == []


def test_per_event_spans_make_each_check_a_span(instrumented, telemetry):
    """With CROSSBRIDGE_OTEL_PER_EVENT_SPANS=true each check is a span; a denial is ERROR rate_limited."""
    runtime = instrumented(CROSSBRIDGE_OTEL_PER_EVENT_SPANS="true")
    limiter = runtime.RateLimiter()
    assert [limiter.check("transform", 2, 60) for _ in range(3)] == [True, True, False]
    spans = telemetry.spans("runtime.rate_limit.check")
    assert [s.attributes["crossbridge.runtime.rate_limit.allowed"] for s in spans] == [True, True, False]
    denied = spans[-1]
    assert denied.attributes["error.type"] == "rate_limited"
    assert [e.name for e in denied.events] == ["rate_limit.denied"]
    assert denied.events[0].attributes["rate_limit.key"] == "transform"


def test_burst_of_checks_keeps_crossbridge_semantics(runtime, telemetry):
    """CrossBridge's burst scenario under a span: 100 allowed, the 101st denied, counted 101 / 1."""
    limiter = runtime.RateLimiter()
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span("burst"):
        allowed = [limiter.check("burst_user", capacity=100, window_seconds=3600) for _ in range(101)]
    assert allowed == [True] * 100 + [False]
    burst = telemetry.span("burst")
    assert (burst.attributes["crossbridge.runtime.rate_limit.check.count"],
            burst.attributes["crossbridge.runtime.rate_limit.check.denied"]) == (101, 1)
