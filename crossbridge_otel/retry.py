"""Retry layer (issue 5). The pieces other modules build on are defined here first.

- :func:`record_attempt` writes the ``retry`` span event of TELEMETRY.md for one failed attempt;
- :func:`retry` returns the ``Target.invoker`` factory that retries a target under a named policy.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.trace import Span

from crossbridge_otel.redaction import redact
from crossbridge_otel.targets import Invoker, InvokerEnv, Target
from crossbridge_otel.wrapping import error_type

__all__ = ["record_attempt", "retry"]


def record_attempt(
    span: Span, *, attempt: int, max_attempts: int, will_retry: bool, delay_s: float, exc: BaseException | None,
    error: str | None = None, message: str | None = None,
) -> None:
    """Add one ``retry`` event: the attempt ``attempt`` (1-based) failed; ``delay_s`` is the sleep before the next."""
    span.add_event(
        "retry",
        {
            "retry.attempt": attempt,
            "retry.max_attempts": max_attempts,
            "retry.will_retry": will_retry,
            "retry.delay_s": float(delay_s if will_retry else 0.0),
            "error.type": error if error is not None else (error_type(exc) if exc is not None else "unknown"),
            "exception.message": redact(message if message is not None else (str(exc) if exc is not None else "")),
        },
    )


def retry(policy: str = "default", *, write: bool = False) -> Callable[[Target, InvokerEnv], Invoker | None]:
    """The invoker factory for a target retried under ``policy``; ``write`` marks non-idempotent writes."""

    def factory(target: Target, env: InvokerEnv) -> Invoker | None:
        return None  # filled in by the retry layer (issue 5)

    return factory
