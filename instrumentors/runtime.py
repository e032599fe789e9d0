"""Runtime instrumentation: CrossBridge's ``core.runtime`` retry loop, health registry and rate limiter.

Enabled under ``opentelemetry-instrument`` as ``crossbridge_runtime``,
its name in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``; in code::

    from crossbridge_otel.instrumentors.runtime import RuntimeInstrumentor
    RuntimeInstrumentor().instrument(tracer_provider=..., meter_provider=...)

Every span carries ``crossbridge.area=runtime``, ``crossbridge.category=general`` and ``code.function.name``.

============================  ==========================================  ======================================
span                          attributes                                  outcome
============================  ==========================================  ======================================
``runtime.retry``             ``crossbridge.runtime.retry.max_attempts``,  the loop's exception (re-raised as is)
(``retry_with_backoff``, and  ``retry.attempts``; one ``retry`` event per
so ``@retryable``)            failed attempt (``retry.delay_s`` measured)
``runtime.health.check``      ``crossbridge.runtime.health.check``,        not healthy → ERROR ``health_<status>``
(``HealthRegistry.run``)      ``.status``; gauge ``crossbridge.health.     with the check's message
                              status`` {check}
``runtime.health.run_all``    ``.overall_status``, ``.passed``,            not healthy → ERROR
                              ``.failed``, ``.total``                     ``health_<overall_status>``
counted, no span:             on the *enclosing* span: ``crossbridge.        a denial: a ``rate_limit.denied``
``RateLimiter.check`` (and    runtime.rate_limit.check.count`` and         event there (``rate_limit.key``,
so ``check_rate_limit``)      ``crossbridge.runtime.rate_limit.check.      ``.capacity``, ``.window_s``)
                              denied``
============================  ==========================================  ======================================

A rate-limit check is a high-frequency call (one per request or per file) and cheap in CrossBridge (a dict
lookup and a token bucket under two locks), so it is never a span of its own: each check bumps the counts on
the enclosing recording span (nothing at all without one). With ``CROSSBRIDGE_OTEL_PER_EVENT_SPANS=true`` each
check is a ``runtime.rate_limit.check`` span instead (``.key``, ``.capacity``, ``.window_s``, ``.allowed``; a
denial is ERROR ``rate_limited`` with the same event).

CrossBridge's own retry loop is *observed*, never repeated: the function handed to ``retry_with_backoff`` is
wrapped so each call is an attempt; attempts do not multiply. Its default ``RetryPolicy`` does not retry
``requests``/``psycopg2``/``sqlite3`` exceptions (TARGETS §9): such a failure shows as one attempt.

Broken in CrossBridge, documented rather than wrapped: ``with_database_retry`` always raises ``TypeError``
(``retry_with_backoff() got an unexpected keyword argument 'policy_name'``) and never runs the decorated
function; on the ``runtime.retry`` span that call shows ``retry.attempts=0``. ``register_database_health_check``,
``HardenedDatabaseConnection``, the ``with_*_retry`` decorators and ``Hardened*`` wrappers of the other
``*_integration`` modules raise ``TypeError``/``ImportError`` when used. Use the crossbridge-otel retry layer
(``crossbridge_otel.retry.invoker``) and health checks (``crossbridge_otel.doctor.health``) instead.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.metrics import _Gauge as Gauge
from opentelemetry.trace import Span

from crossbridge_otel._guard import report_failure
from crossbridge_otel.doctor.health import health_gauge
from crossbridge_otel.patching.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.patching.invokers import AfterCall, Invoker, InvokerEnv, InvokerSpec
from crossbridge_otel.patching.readers import Prefix, arg, bounded, enum_value, failed_if_false, fields
from crossbridge_otel.patching.targets import Attrs, Engine, Failure, Target
from crossbridge_otel.patching.wrapping import SWITCH, Binding, bump, stands_for
from crossbridge_otel.retry.observed import ArgumentAttempts, ObservedRetry

__all__ = ["CountedTarget", "RuntimeInstrumentor"]

_R = Prefix("crossbridge.runtime.")
_HEALTH = Prefix("crossbridge.runtime.health.")
_LIMIT = Prefix("crossbridge.runtime.rate_limit.")


# -- retry_with_backoff: observed, not repeated --------------------------------------------------------


def _retry_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_R["retry.max_attempts"]: _max_attempts(args, kwargs)}


def _max_attempts(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    return int(getattr(arg(args, kwargs, 1, "policy"), "max_attempts", 3))


# -- health registry ------------------------------------------------------------------------------------


def _check_name(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    return bounded(arg(args, kwargs, 1, "name"), 100)


def _check_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_HEALTH.check: _check_name(args, kwargs)}


def _check_result(result: Any) -> Attrs:
    return {_HEALTH.status: enum_value(getattr(result, "status", None))}


def _check_outcome(result: Any) -> Failure:
    status = enum_value(getattr(result, "status", None))
    if status in (None, "healthy"):
        return None
    return (f"health_{status}", str(getattr(result, "message", "") or status))


def _set_gauge(gauge: Gauge, span: Span, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    if result is None:  # the check raised (HealthRegistry.run raises KeyError for an unknown name): no series
        return
    healthy = enum_value(getattr(result, "status", None)) == "healthy"
    gauge.set(1 if healthy else 0, {"check": str(_check_name(args, kwargs))})


@dataclass(frozen=True)
class HealthGauge(InvokerSpec):
    """Sets ``crossbridge.health.status`` {check} from the check's result."""

    def build(self, env: InvokerEnv, inner: Invoker | None) -> Invoker:
        return AfterCall(functools.partial(_set_gauge, health_gauge(env.meter))).build(env, inner)


_RUN_ALL = fields(_HEALTH, "overall_status", "passed", "failed", total="total_checks")


def _all_result(result: Any) -> Attrs:
    if not isinstance(result, dict):
        return {}
    return _RUN_ALL(result)


def _all_outcome(result: Any) -> Failure:
    overall = result.get("overall_status") if isinstance(result, dict) else None
    if overall in (None, "healthy"):
        return None
    return (f"health_{overall}", f"{result.get('failed')} of {result.get('total_checks')} health checks failed")


# -- rate limiter -----------------------------------------------------------------------------------------


def _limit(prefix: Prefix) -> Callable[[tuple[Any, ...], dict[str, Any]], Attrs]:
    """``RateLimiter.check(self, key, capacity, window_seconds)``: its key and bucket, under ``prefix``."""

    def read(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        return {prefix.key: bounded(arg(args, kwargs, 1, "key"), 100),
                prefix.capacity: arg(args, kwargs, 2, "capacity"),
                prefix.window_s: arg(args, kwargs, 3, "window_seconds")}

    return read


def _limit_result(result: Any) -> Attrs:
    return {_LIMIT.allowed: bool(result)}


@dataclass(frozen=True)
class CountedTarget(Target):
    """A high-frequency row whose failures matter.

    Without per-event spans each call is counted on the enclosing recording span (``crossbridge.<span>.count``);
    a call whose ``outcome`` is a failure also bumps ``crossbridge.<span>.<failed>`` there and adds the event
    ``event`` with ``event_attributes(args, kwargs)``. With per-event spans it is a span of its own, and the
    failure's event goes on that span.
    """

    failed: str = "failed"
    event: str = ""
    event_attributes: Callable[[tuple[Any, ...], dict[str, Any]], Attrs] | None = None

    def wrap(self, raw: Any, engine: Engine) -> Any:
        if not callable(raw) or isinstance(raw, (type, staticmethod, classmethod)):
            return engine.wrapper(raw, self)
        if not engine.settings.per_event_spans:
            return _counted(raw, self, engine.binding(self))
        noted = AfterCall(self._note_failure)
        return engine.wrapper(raw, dataclasses.replace(self, mode="span", invokers=(*self.invokers, noted)))

    def _note_failure(self, span: Span, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        """Per-event spans: the failure's event on the call's own span."""
        if self.outcome is not None and self.outcome(result) is not None:
            span.add_event(self.event, self._event_attributes(args, kwargs))

    def _event_attributes(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        return dict(self.event_attributes(args, kwargs)) if self.event_attributes is not None else None


def _counted(raw: Callable[..., Any], target: CountedTarget, binding: Binding) -> Callable[..., Any]:
    """The call first, then (only under a recording span) the counts and a failure's event. The count is read
    back from the span and written under one lock, so checks from many threads under one span add up."""
    switch = SWITCH
    lock = threading.Lock()
    current = trace_api.get_current_span
    count_key, failed_key = binding.count_key, f"crossbridge.{target.span}.{target.failed}"
    outcome = target.outcome

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = raw(*args, **kwargs)
        span = current()
        if switch.on and binding.live and span.is_recording():
            try:
                failed = outcome is not None and outcome(result) is not None
                with lock:
                    bump(span, count_key)
                    if failed:
                        bump(span, failed_key)
                if failed:
                    span.add_event(target.event, target._event_attributes(args, kwargs))
            except Exception as exc:
                report_failure(f"count of {target.span}", exc)
        return result

    return stands_for(wrapper, raw)


_CHECK = CountedTarget("core.runtime.rate_limit", "RateLimiter.check", "runtime.rate_limit.check", mode="count",
                       call_attributes=_limit(_LIMIT), result_attributes=_limit_result,
                       outcome=failed_if_false("rate_limited", "CrossBridge RateLimiter denied the request"),
                       failed="denied", event="rate_limit.denied", event_attributes=_limit(Prefix("rate_limit.")))


class RuntimeInstrumentor(CrossBridgeInstrumentor):
    """``core.runtime``: retry loop attempts, health checks (and the health gauge), rate-limit checks counted."""

    area = "runtime"
    category = "general"
    targets = (
        Target("core.runtime.retry", "retry_with_backoff", "runtime.retry", call_attributes=_retry_call,
               invokers=(ObservedRetry("retry_with_backoff", _max_attempts, ArgumentAttempts(0, "func")),)),
        Target("core.runtime.health", "HealthRegistry.run", "runtime.health.check", call_attributes=_check_call,
               result_attributes=_check_result, outcome=_check_outcome, invokers=(HealthGauge(),)),
        Target("core.runtime.health", "HealthRegistry.run_all", "runtime.health.run_all",
               result_attributes=_all_result, outcome=_all_outcome),
        _CHECK,
    )
