"""Attempts as telemetry: the ``retry`` span event, the ``crossbridge.retry.attempts`` counter, and
:class:`AttemptLog`, which observes a retry loop someone else runs (CrossBridge's own loops) without adding one.

The counter is an observable counter read from per-operation tallies: counting an attempt on the hot path is
one ``next()`` on an ``itertools.count`` (tens of nanoseconds) instead of a synchronous ``Counter.add``
(microseconds). Its attributes are ``area``, ``operation`` and ``outcome``:

- ``ok``: the attempt succeeded;
- ``retried``: the attempt failed and another one followed;
- ``failed``: the attempt failed and none followed (gave up, permanent error, or budget spent).

Observing someone else's loop (a row declares it with :class:`~crossbridge_otel.retry.observed.ObservedRetry`,
which makes the log for each call)::

    attempts = AttemptLog(span, max_attempts=3, tally=tally_for(meter, "repo", "repo.create_pull_request"))
    fn = attempts.wrap(fn)              # each call of fn is one attempt; a raise (or failure(result)) marks it failed
    ...                                 # or: attempts.start(); attempts.failed(exc); attempts.succeeded()
    attempts.close()

A failure is held until the next attempt starts: then it becomes a ``retry`` event with ``will_retry=true``
and ``retry.delay_s`` the time measured between the failure and the next attempt (the loop's real sleep).
A failure still held at the end becomes the final event (``will_retry=false``, delay 0). ``close()`` sets
``retry.attempts`` on the span. Pass ``delay_s=`` and ``will_retry=`` to :meth:`AttemptLog.failed` when the
loop tells you (an ``on_retry`` callback) to record the event at once.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.trace import Span

from crossbridge_otel._guard import contained
from crossbridge_otel.patching.targets import Failure
from crossbridge_otel.patching.wrapping import error_type
from crossbridge_otel.redaction import redact

__all__ = ["ATTEMPTS_METRIC", "AttemptLog", "Tally", "record_attempt", "tally_for"]

ATTEMPTS_METRIC = "crossbridge.retry.attempts"
_OUTCOMES = ("ok", "retried", "failed")


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


def _value(counter: itertools.count[int]) -> int:
    # itertools.count has no public read; its repr is "count(N)" on every CPython.
    return int(repr(counter)[6:-1])


class Tally:
    """Attempt counts of one operation, read by the observable counter."""

    __slots__ = ("attributes", "failed", "ok", "retried")

    def __init__(self, area: str, operation: str) -> None:
        self.ok = itertools.count()
        self.retried = itertools.count()
        self.failed = itertools.count()
        self.attributes = {o: {"area": area, "operation": operation, "outcome": o} for o in _OUTCOMES}

    def observations(self) -> Iterable[Observation]:
        for outcome, counter in (("ok", self.ok), ("retried", self.retried), ("failed", self.failed)):
            value = _value(counter)
            if value:
                yield Observation(value, self.attributes[outcome])


_lock = threading.Lock()
_by_meter: dict[int, tuple[Meter, dict[tuple[str, str], Tally]]] = {}


def tally_for(meter: Meter | None, area: str, operation: str) -> Tally:
    """The tally of ``operation``, reported through ``meter``'s ``crossbridge.retry.attempts`` counter."""
    if meter is None:
        return Tally(area, operation)
    with _lock:
        entry = _by_meter.get(id(meter))
        if entry is None or entry[0] is not meter:
            tallies: dict[tuple[str, str], Tally] = {}

            def callback(options: CallbackOptions) -> Iterable[Observation]:
                for tally in list(tallies.values()):
                    yield from tally.observations()

            meter.create_observable_counter(
                ATTEMPTS_METRIC, callbacks=[callback], unit="{attempt}",
                description="Attempts of operations under retry, by outcome (ok, retried, failed)",
            )
            entry = _by_meter[id(meter)] = (meter, tallies)
        return entry[1].setdefault((area, operation), Tally(area, operation))


class AttemptLog:
    """Turns the attempts of a loop run elsewhere into ``retry`` events on one span (see the module docstring)."""

    def __init__(self, span: Span, *, max_attempts: int, tally: Tally | None = None) -> None:
        self.span = span
        self.max_attempts = max_attempts
        self.tally = tally
        self.attempts = 0
        self._pending: tuple[int, BaseException | None, str | None, str | None, float] | None = None

    def start(self) -> None:
        """A new attempt begins; a held failure becomes a ``retry`` event with the measured delay."""
        if self._pending is not None:
            self._emit(will_retry=True, delay_s=time.monotonic() - self._pending[4])
        self.attempts += 1

    def failed(self, exc: BaseException | None = None, *, error: str | None = None, message: str | None = None,
               delay_s: float | None = None, will_retry: bool | None = None) -> None:
        """The current attempt failed; held until the next :meth:`start` unless the loop's decision is given."""
        self._pending = (max(self.attempts, 1), exc, error, message, time.monotonic())
        if will_retry is not None:
            self._emit(will_retry=will_retry, delay_s=delay_s or 0.0)

    def succeeded(self) -> None:
        """The current attempt succeeded."""
        if self.tally is not None:
            next(self.tally.ok)

    def wrap(self, fn: Callable[..., Any], failure: Callable[[Any], Failure] | None = None) -> Callable[..., Any]:
        """``fn`` with every call counted as one attempt: an exception (which propagates) or ``failure(result)``
        (a failure the loop only returns: a FAILED result, a non-200 response) marks it failed."""

        @functools.wraps(fn)
        def attempt(*args: Any, **kwargs: Any) -> Any:
            with _Attempt(self, failure) as one:
                return one.done(fn(*args, **kwargs))

        return attempt

    def wrap_async(self, fn: Callable[..., Any], failure: Callable[[Any], Failure] | None = None) -> Callable[..., Any]:
        """The coroutine-function version of :meth:`wrap`."""

        @functools.wraps(fn)
        async def attempt(*args: Any, **kwargs: Any) -> Any:
            with _Attempt(self, failure) as one:
                return one.done(await fn(*args, **kwargs))

        return attempt

    def close(self) -> None:
        """End of the loop: a held failure is the final one; ``retry.attempts`` goes on the span."""
        if self._pending is not None:
            self._emit(will_retry=False, delay_s=0.0)
        self.span.set_attribute("retry.attempts", self.attempts)

    def _emit(self, *, will_retry: bool, delay_s: float) -> None:
        assert self._pending is not None
        attempt, exc, error, message, _ = self._pending
        self._pending = None
        record_attempt(self.span, attempt=attempt, max_attempts=self.max_attempts, will_retry=will_retry,
                       delay_s=delay_s, exc=exc, error=error, message=message)
        if self.tally is not None:
            next(self.tally.retried if will_retry else self.tally.failed)


class _Attempt:
    """One call of a wrapped attempt (:meth:`AttemptLog.wrap`); the bookkeeping is contained, the call is not."""

    __slots__ = ("failure", "log")

    def __init__(self, log: AttemptLog, failure: Callable[[Any], Failure] | None) -> None:
        self.log = log
        self.failure = failure

    def __enter__(self) -> _Attempt:
        with contained("observing a retry loop"):
            self.log.start()
        return self

    def done(self, result: Any) -> Any:
        with contained("observing a retry loop"):
            found = self.failure(result) if self.failure is not None else None
            if found is not None:
                self.log.failed(None, error=found[0], message=found[1])
            else:
                self.log.succeeded()
        return result

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is not None:
            with contained("observing a retry loop"):
                self.log.failed(exc)
