"""The retry layer: a target's call retried under a named policy, every attempt visible on its one span.

Usage in a target table (:class:`Retry` is an invoker type: a value on the row, the last of its invokers)::

    Target("core.profiling.storage", "PostgresStorageBackend.initialize", "profiling.storage.initialize",
           outcome=failed_if_false(), invokers=(Retry("quick"),))
    Target(..., "PostgresStorageBackend.write_events", ...,
           invokers=(Retry("restart", write=True, worker=Worker("_background_flush")),))

How a call runs (each row's ``Retry`` builds a fresh ``backoff.on_exception`` loop at patch time):

1. the first attempt is a plain call, outside the loop (the success path costs well under a microsecond);
2. a failure enters the backoff loop: an exception, or a *swallowed* failure (the target's ``outcome`` reads
   ``False``/``None``/... from the result). Targets that swallow failures run each attempt under
   :mod:`crossbridge_otel.retry.swallowed`, which recovers the exception CrossBridge caught and logged, and whether
   the attempt reached ``commit``;
3. the verdict (:mod:`crossbridge_otel.retry.transient`) decides: transient → sleep (full jitter capped by the
   policy, or ``Retry-After`` capped) and try again, within ``attempts`` and the monotonic ``retry_budget``;
   a swallowed failure with no exception behind it is a decision, not a failure, and is not retried;
4. ``write=True`` targets (non-idempotent) are retried only with ``CROSSBRIDGE_OTEL_RETRY_WRITES=true``, and
   then only when the attempt failed before the server could apply it: it never reached ``commit`` (one
   transaction per batch, rolled back by the server), or the error says the request was never accepted
   (connection refused, HTTP 429/503). A failure at or after commit is reported, never repeated;
5. a row with a ``worker`` waits long only on that worker's thread: a call made inside ``Worker.function``
   (found up the calling thread's stack, e.g. CrossBridge's ``MetricsCollector._background_flush``) runs under
   the row's policy, and its wait ends early (one last attempt, then give up) as soon as the worker's
   ``self.running`` turns false; any other thread (the application's, e.g. ``MetricsCollector.flush`` at
   shutdown) gets the short ``elsewhere`` policy, so an application thread never waits through a restart;
6. each failed attempt adds a ``retry`` event; the span carries ``retry.attempts`` (1 from the start, updated
   when retried); giving up returns the last swallowed result or re-raises the last exception object, and the
   engine marks the span ERROR; ``crossbridge.retry.attempts`` counts attempts by outcome.

``CROSSBRIDGE_OTEL_RETRY=false`` removes the layer (plain calls). CrossBridge's own retry loops are declared
with :class:`~crossbridge_otel.retry.observed.ObservedRetry` instead: it observes, never retries.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import backoff
from backoff.types import Details
from opentelemetry.trace import Span

from crossbridge_otel._guard import guarded, report_failure
from crossbridge_otel.patching.invokers import Invoker, InvokerEnv, InvokerSpec
from crossbridge_otel.patching.targets import Failure
from crossbridge_otel.patching.wrapping import exception_attributes
from crossbridge_otel.retry.attempts import Tally, record_attempt, tally_for
from crossbridge_otel.retry.policies import Policy, capped_delay, policy_named
from crossbridge_otel.retry.swallowed import Evidence, observe
from crossbridge_otel.retry.transient import classify, is_database_error

__all__ = ["Retrier", "Retry", "Worker"]

_monotonic = time.monotonic
_local = threading.local()
_SLICE = 0.1  # how often a worker's wait checks that the worker still runs


class _Swallowed(Exception):
    """An attempt whose failure CrossBridge swallowed into its return value (internal to the loop)."""

    def __init__(self, result: Any, failure: tuple[str, str], evidence: Evidence) -> None:
        super().__init__(failure[1] or failure[0])
        self.result = result
        self.failure = failure
        self.evidence = evidence


class _Call:
    """Per-call state of the slow path (the backoff loop is shared by every call of a target)."""

    __slots__ = ("alive", "args", "attempts", "deadline", "delay", "evidence", "first", "kwargs", "original",
                 "policy", "result", "span")

    def __init__(self, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span,
                 first: BaseException, evidence: Evidence | None, policy: Policy,
                 alive: Callable[[], bool] | None) -> None:
        self.original, self.args, self.kwargs, self.span = original, args, kwargs, span
        self.first: BaseException | None = first
        self.evidence = evidence
        self.policy = policy
        self.alive = alive
        self.deadline = 0.0
        self.delay = 0.0  # the wait before the next attempt, slept by that attempt
        self.attempts = 1
        self.result: Any = None


@dataclass(frozen=True)
class Worker:
    """A background loop a retry may wait on: the method named ``function``, found up the calling thread's stack;
    the wait ends once its ``self.<running>`` turns false (the worker is being stopped)."""

    function: str
    running: str = "running"

    def find(self) -> Callable[[], bool] | None:
        """``() -> still running`` when the calling thread is inside the worker, else None (slow path only)."""
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_name == self.function:
                owner = frame.f_locals.get("self")
                if owner is not None:
                    name = self.running
                    return lambda: bool(getattr(owner, name, False))
            frame = frame.f_back  # type: ignore[assignment]
        return None


def _current() -> _Call:
    return _local.call  # type: ignore[no-any-return]


def _max_tries() -> int:
    return _current().policy.attempts


class Retrier:
    """The retry loop of one target: its policy, budget, write rule, outcome reader and attempt tally."""

    def __init__(self, policy: Policy, *, budget: float, write: bool = False,
                 outcome: Callable[[Any], Failure] | None = None, tally: Tally | None = None,
                 worker: Worker | None = None, elsewhere: Policy | None = None) -> None:
        self.policy = policy
        self.budget = budget
        self.write = write
        self.worker = worker
        self.elsewhere = elsewhere if elsewhere is not None else policy
        self.outcome = outcome
        self.tally = tally if tally is not None else Tally("", "")
        self.observing = outcome is not None or write
        # A fresh decorator per target: backoff handlers are bound to this loop only.
        self._loop = backoff.on_exception(
            self._waits, Exception, max_tries=_max_tries, jitter=None, giveup=self._giveup,
            on_backoff=self._on_backoff, on_giveup=self._on_giveup, on_success=self._on_success,
            logger=None, call=_current,
        )(self._attempt)

    # -- the invoker (first attempt outside the loop) ----------------------------------------------------

    def invoker(self) -> Invoker:
        """The built invoker of this loop (what :meth:`Retry.build` returns)."""
        return self._invoke_observed if self.observing else self._invoke_plain

    def _invoke_plain(self, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                      span: Span) -> Any:
        started = _monotonic()
        try:
            result = original(*args, **kwargs)
        except Exception as exc:
            return self._retry(original, args, kwargs, span, exc, None, started)
        next(self.tally.ok)
        return result

    def _invoke_observed(self, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                         span: Span) -> Any:
        started = _monotonic()
        evidence = Evidence()
        try:
            result = observe(original, args, kwargs, evidence)
        except Exception as exc:
            return self._retry(original, args, kwargs, span, exc, evidence, started)
        failure = self._failure(result)
        if failure is not None:
            return self._retry(original, args, kwargs, span, _Swallowed(result, failure, evidence), evidence,
                               started)
        next(self.tally.ok)
        return result

    def call(self, fn: Callable[..., Any], span: Span, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` under this loop on ``span`` (for code that is not a target, e.g. probes)."""
        return self.invoker()(fn, args, kwargs, span)

    # -- the slow path ------------------------------------------------------------------------------------

    def _retry(self, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span,
               first: BaseException, evidence: Evidence | None, started: float) -> Any:
        policy, alive = self.policy, None
        if self.worker is not None:
            alive = self.worker.find()
            if alive is None:  # not the worker's thread (the application's): no long wait here
                policy = self.elsewhere
        call = _Call(original, args, kwargs, span, first, evidence, policy, alive)
        budget = self.budget if policy.budget is None else min(self.budget, policy.budget)
        call.deadline = started + budget
        previous = getattr(_local, "call", None)
        _local.call = call
        try:
            self._loop(call)
        except _Swallowed as gave_up:
            return gave_up.result
        finally:
            _local.call = previous
            span.set_attribute("retry.attempts", call.attempts)
        return call.result

    def _attempt(self, call: _Call) -> None:
        first = call.first
        if first is not None:  # attempt 1 already ran: hand its failure to the loop
            call.first = None
            raise first
        self._pause(call)
        if not self.observing:
            call.result = call.original(*call.args, **call.kwargs)
            return
        call.evidence = evidence = Evidence()
        result = observe(call.original, call.args, call.kwargs, evidence)
        failure = self._failure(result)
        if failure is not None:
            raise _Swallowed(result, failure, evidence)
        call.result = result

    @staticmethod
    def _pause(call: _Call) -> None:
        """Sleep the wait before this attempt; a worker's wait ends early when the worker stops running."""
        delay, call.delay = call.delay, 0.0
        alive = call.alive
        if alive is None:
            if delay > 0:
                time.sleep(delay)
            return
        end = _monotonic() + delay
        while alive():
            left = end - _monotonic()
            if left <= 0:
                return
            time.sleep(min(left, _SLICE))
        call.deadline = _monotonic()  # the worker is stopping: this attempt is the last

    def _failure(self, result: Any) -> Failure:
        # per call of a swallowing target: guard inlined (see crossbridge_otel.patching.wrapping)
        if self.outcome is None:
            return None
        try:
            return self.outcome(result)
        except Exception as exc:
            report_failure("retry outcome", exc)
            return None

    def _retryable(self, exc: BaseException, call: _Call) -> bool:
        evidence = call.evidence
        if isinstance(exc, _Swallowed):
            evidence = exc.evidence
            if evidence.observed and evidence.exc is None:
                return False  # nothing was caught: CrossBridge decided to return this, retrying changes nothing
            if evidence.exc is None:
                return not self.write  # no evidence (another profiler is active): idempotent calls only
            exc = evidence.exc
        verdict = classify(exc)
        if not verdict.transient:
            return False
        if not self.write:
            return True
        if is_database_error(exc) and evidence is not None and evidence.observed:
            return not evidence.reached_commit  # an uncommitted transaction dies with its connection
        return verdict.before_request

    def _giveup(self, exc: BaseException) -> bool:
        call = _current()
        return _monotonic() >= call.deadline or not self._retryable(exc, call)

    def _waits(self, call: _Call) -> Generator[float, Any, None]:
        exc = yield 0.0
        failed = 0
        while True:
            failed += 1
            cause = exc.evidence.exc if isinstance(exc, _Swallowed) else exc
            delay = capped_delay(call.policy, failed, classify(cause).retry_after if cause is not None else None)
            if _monotonic() + delay >= call.deadline:
                return  # the sleep would spend the budget: give up now
            call.delay = delay  # slept by the next attempt (see _pause), so a worker's wait can end early
            exc = yield 0.0

    # -- backoff handlers: one ``retry`` event per failed attempt ----------------------------------------

    def _record(self, details: Details, will_retry: bool, delay: float) -> None:
        call: _Call = details["args"][0]
        call.attempts = details["tries"]
        exc: BaseException = cast(dict[str, Any], details)["exception"]
        error = message = None
        if isinstance(exc, _Swallowed):
            caught = exc.evidence.exc
            if caught is not None:
                exc_for_event: BaseException | None = caught
            else:
                exc_for_event, error, message = None, exc.failure[0], exc.failure[1]
            if not will_retry and caught is not None:
                call.span.record_exception(caught, attributes=exception_attributes(caught))
        else:
            exc_for_event = exc
        record_attempt(call.span, attempt=details["tries"], max_attempts=call.policy.attempts,
                       will_retry=will_retry, delay_s=delay, exc=exc_for_event, error=error, message=message)
        next(self.tally.retried if will_retry else self.tally.failed)

    @guarded("retry event", None)
    def _on_backoff(self, details: Details) -> None:
        self._record(details, True, details["args"][0].delay)

    @guarded("retry event", None)
    def _on_giveup(self, details: Details) -> None:
        self._record(details, False, 0.0)

    def _on_success(self, details: Details) -> None:
        details["args"][0].attempts = details["tries"]
        next(self.tally.ok)


@dataclass(frozen=True)
class Retry(InvokerSpec):
    """The row's call retried under the named ``policy``; ``write=True`` marks a non-idempotent write (retried
    only with ``CROSSBRIDGE_OTEL_RETRY_WRITES=true``, and then only before commit). With a ``worker``, only calls
    on that worker's thread get ``policy``; others get ``elsewhere``. Last of a row's invokers."""

    innermost: ClassVar[bool] = True
    policy: str = "default"
    write: bool = False
    worker: Worker | None = None
    elsewhere: str = "default"

    def build(self, env: InvokerEnv, inner: Invoker | None) -> Invoker | None:
        settings = env.settings
        if not settings.retry or (self.write and not settings.retry_writes):
            return None
        chosen = policy_named(self.policy, settings.retry_policies)
        elsewhere = policy_named(self.elsewhere, settings.retry_policies) if self.worker is not None else None
        env.start_attributes["retry.attempts"] = 1
        target = env.target
        retrier = Retrier(chosen, budget=settings.retry_budget, write=self.write, outcome=target.outcome,
                          tally=tally_for(env.meter, env.area, target.span), worker=self.worker,
                          elsewhere=elsewhere)
        return retrier.invoker()

    @property
    def label(self) -> str:
        """How the audit names it: the policy (and where it applies), and whether it is a write."""
        policy = self.policy
        if self.worker is not None:
            policy = f"{policy} in {self.worker.function}, else {self.elsewhere}"
        return f"{policy}, writes" if self.write else policy
