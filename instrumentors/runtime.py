"""Runtime instrumentation: CrossBridge's ``core.runtime`` retry loop, health registry and rate limiter.

Enabled by the ``crossbridge_runtime`` entry point under ``opentelemetry-instrument``; in code::

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
from opentelemetry.trace import Span

from crossbridge_otel._guard import report_failure
from crossbridge_otel.doctor.health import health_gauge
from crossbridge_otel.patching.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.patching.targets import Attrs, Failure, Invoker, InvokerEnv, Target, arg
from crossbridge_otel.patching.wrapping import ORIGINAL_ATTR, SWITCH, Binding
from crossbridge_otel.retry.attempts import AttemptLog, tally_for

__all__ = ["CountedTarget", "RuntimeInstrumentor"]

_R = "crossbridge.runtime."


def _enum(value: Any) -> Any:
    return getattr(value, "value", value)


# -- retry_with_backoff: observed, not repeated --------------------------------------------------------


def _retry_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    policy = arg(args, kwargs, 1, "policy")
    return {_R + "retry.max_attempts": getattr(policy, "max_attempts", 3)}


def _observe_loop(target: Target, env: InvokerEnv) -> Invoker:
    tally = tally_for(env.meter, env.area, target.span)

    def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
        log = None
        try:
            policy = arg(args, kwargs, 1, "policy")
            func = arg(args, kwargs, 0, "func")
            if callable(func):
                log = AttemptLog(span, max_attempts=int(getattr(policy, "max_attempts", 3)), tally=tally)
                if args:
                    args = (log.wrap(func), *args[1:])
                else:
                    kwargs = {**kwargs, "func": log.wrap(func)}
        except Exception as exc:
            report_failure("runtime retry observation", exc)
        try:
            return original(*args, **kwargs)
        finally:
            if log is not None:
                try:
                    log.close()
                except Exception as exc:
                    report_failure("runtime retry observation", exc)

    return invoke


# -- health registry ------------------------------------------------------------------------------------


def _check_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_R + "health.check": str(arg(args, kwargs, 1, "name"))[:100]}


def _check_result(result: Any) -> Attrs:
    return {_R + "health.status": _enum(getattr(result, "status", None))}


def _check_outcome(result: Any) -> Failure:
    status = _enum(getattr(result, "status", None))
    if status in (None, "healthy"):
        return None
    return (f"health_{status}", str(getattr(result, "message", "") or status))


def _gauged(target: Target, env: InvokerEnv) -> Invoker:
    gauge = health_gauge(env.meter)

    def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
        result = original(*args, **kwargs)
        try:
            name = str(arg(args, kwargs, 1, "name"))[:100]
            gauge.set(1 if _enum(getattr(result, "status", None)) == "healthy" else 0, {"check": name})
        except Exception as exc:
            report_failure("runtime health gauge", exc)
        return result

    return invoke


def _all_result(result: Any) -> Attrs:
    if not isinstance(result, dict):
        return {}
    return {_R + "health.overall_status": result.get("overall_status"), _R + "health.passed": result.get("passed"),
            _R + "health.failed": result.get("failed"), _R + "health.total": result.get("total_checks")}


def _all_outcome(result: Any) -> Failure:
    overall = result.get("overall_status") if isinstance(result, dict) else None
    if overall in (None, "healthy"):
        return None
    return (f"health_{overall}", f"{result.get('failed')} of {result.get('total_checks')} health checks failed")


# -- rate limiter -----------------------------------------------------------------------------------------


def _limit_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_R + "rate_limit.key": str(arg(args, kwargs, 1, "key"))[:100],
            _R + "rate_limit.capacity": arg(args, kwargs, 2, "capacity"),
            _R + "rate_limit.window_s": arg(args, kwargs, 3, "window_seconds")}


def _limit_result(result: Any) -> Attrs:
    return {_R + "rate_limit.allowed": bool(result)}


def _limit_outcome(result: Any) -> Failure:
    return ("rate_limited", "CrossBridge RateLimiter denied the request") if result is False else None


def _denial(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {"rate_limit.key": str(arg(args, kwargs, 1, "key"))[:100],
            "rate_limit.capacity": arg(args, kwargs, 2, "capacity"),
            "rate_limit.window_s": arg(args, kwargs, 3, "window_seconds")}


@dataclass(frozen=True)
class CountedTarget(Target):
    """A high-frequency row whose failures matter (read by ``RuntimeInstrumentor._wrap``).

    Without per-event spans each call is counted on the enclosing recording span (``crossbridge.<span>.count``);
    a call whose ``outcome`` is a failure also bumps ``crossbridge.<span>.<failed>`` there and adds the event
    ``event`` with ``event_attributes(args, kwargs)``. With per-event spans it is a span of its own, and the
    failure's event goes on that span.
    """

    failed: str = "failed"
    event: str = ""
    event_attributes: Callable[[tuple[Any, ...], dict[str, Any]], Attrs] | None = None


def _noted(target: CountedTarget) -> Callable[[Target, InvokerEnv], Invoker]:
    """Per-event spans: the failure's event on the call's own span."""

    def factory(_: Target, env: InvokerEnv) -> Invoker:
        def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
            result = original(*args, **kwargs)
            if target.outcome is not None and target.outcome(result) is not None:
                try:
                    span.add_event(target.event, dict(target.event_attributes(args, kwargs))
                                   if target.event_attributes is not None else None)
                except Exception as exc:
                    report_failure(f"event of {target.span}", exc)
            return result

        return invoke

    return factory


def _counted(raw: Callable[..., Any], target: CountedTarget, binding: Binding) -> Callable[..., Any]:
    """The call first, then (only under a recording span) the counts and a failure's event. The count is read
    back from the span and written under one lock, so checks from many threads under one span add up."""
    switch = SWITCH
    lock = threading.Lock()
    current = trace_api.get_current_span
    count_key, failed_key = binding.count_key, f"crossbridge.{target.span}.{target.failed}"
    outcome, attributes = target.outcome, target.event_attributes

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = raw(*args, **kwargs)
        span = current()
        if switch.on and binding.live and span.is_recording():
            try:
                failed = outcome is not None and outcome(result) is not None
                with lock:
                    seen = getattr(span, "attributes", None) or {}
                    span.set_attribute(count_key, seen.get(count_key, 0) + 1)
                    if failed:
                        span.set_attribute(failed_key, seen.get(failed_key, 0) + 1)
                if failed:
                    span.add_event(target.event, dict(attributes(args, kwargs)) if attributes is not None else None)
            except Exception as exc:
                report_failure(f"count of {target.span}", exc)
        return result

    functools.update_wrapper(wrapper, raw)
    setattr(wrapper, ORIGINAL_ATTR, raw)
    return wrapper


_CHECK = CountedTarget("core.runtime.rate_limit", "RateLimiter.check", "runtime.rate_limit.check", mode="count",
                       call_attributes=_limit_call, result_attributes=_limit_result, outcome=_limit_outcome,
                       failed="denied", event="rate_limit.denied", event_attributes=_denial)


class RuntimeInstrumentor(CrossBridgeInstrumentor):
    """``core.runtime``: retry loop attempts, health checks (and the health gauge), rate-limit checks counted."""

    area = "runtime"
    category = "general"
    targets = (
        Target("core.runtime.retry", "retry_with_backoff", "runtime.retry", call_attributes=_retry_call,
               invoker=_observe_loop),
        Target("core.runtime.health", "HealthRegistry.run", "runtime.health.check", call_attributes=_check_call,
               result_attributes=_check_result, outcome=_check_outcome, invoker=_gauged),
        Target("core.runtime.health", "HealthRegistry.run_all", "runtime.health.run_all",
               result_attributes=_all_result, outcome=_all_outcome),
        _CHECK,
    )

    def _wrap(self, raw: Any, target: Target, on_class: bool = False) -> Any:
        """A :class:`CountedTarget` is counted on the enclosing span, or (per-event spans) a span with its event."""
        if isinstance(target, CountedTarget) and callable(raw) and not isinstance(raw, (type, staticmethod,
                                                                                         classmethod)):
            if not self._settings.per_event_spans:
                return _counted(raw, target, self._binding(target))
            return super()._wrap(raw, dataclasses.replace(target, mode="span", invoker=_noted(target)), on_class)
        return super()._wrap(raw, target, on_class)
