"""CrossBridge's own retry loops, observed: declared on the row, never found by introspection.

Several CrossBridge operations retry by themselves (``RetryStrategy.execute_with_retry``, the batch orchestrator's
task retry, Bitbucket PR creation, the sidecar client's send loop, ``retry_with_backoff``). A row says so with an
:class:`ObservedRetry` invoker::

    Target("core.execution.strategies", "RetryStrategy.execute_with_retry", "execution.retry_test",
           invokers=(ObservedRetry("RetryStrategy.execute_with_retry", _max_attempts,
                                   ArgumentAttempts(2, "executor_func", failure=_test_failed)),))

For each call it makes an :class:`~crossbridge_otel.retry.attempts.AttemptLog` on the row's span and lets the
row's *tap* route every attempt of CrossBridge's loop through it (wrapping the callable the loop calls); each
failed attempt becomes a ``retry`` event, the span gets ``retry.attempts``, ``crossbridge.retry.attempts`` counts
them. Nothing is retried twice. The audit reads ``loop`` from the row.

A tap is ``tap(attempts, args, kwargs)`` → ``(args, kwargs, undo)`` (the arguments to call with, and what
restores CrossBridge's objects afterwards, or None), or None when there is nothing to observe (the call goes
ahead untouched). :class:`ArgumentAttempts` and :class:`AttributeAttempts` are the two common ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Span

from crossbridge_otel._guard import contained, guarded
from crossbridge_otel.patching.invokers import Invoker, InvokerEnv, InvokerSpec, call_next
from crossbridge_otel.patching.readers import arg
from crossbridge_otel.patching.targets import Failure
from crossbridge_otel.retry.attempts import AttemptLog, Tally, tally_for

__all__ = ["ArgumentAttempts", "AttributeAttempts", "ObservedRetry", "Tap"]

Args = tuple[tuple[Any, ...], dict[str, Any]]
Tap = tuple[tuple[Any, ...], dict[str, Any], Callable[[], None] | None]
TapFn = Callable[[AttemptLog, tuple[Any, ...], dict[str, Any]], Tap | None]


@dataclass(frozen=True)
class ArgumentAttempts:
    """Each call of the callable passed as argument ``index`` (counting ``self``) or ``name`` is one attempt;
    ``failure(result)`` reads a failure the attempt only returns."""

    index: int
    name: str
    failure: Callable[[Any], Failure] | None = None

    def __call__(self, attempts: AttemptLog, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tap | None:
        func = arg(args, kwargs, self.index, self.name)
        if not callable(func):
            return None
        wrapped = attempts.wrap(func, self.failure)
        if len(args) > self.index:
            return (*args[: self.index], wrapped, *args[self.index + 1:]), kwargs, None
        return args, {**kwargs, self.name: wrapped}, None


@dataclass(frozen=True)
class AttributeAttempts:
    """Each call of ``<owner>.<attribute>`` during the call is one attempt, the owner being argument ``index`` or
    ``name``; the attribute is restored afterwards."""

    index: int
    name: str
    attribute: str
    failure: Callable[[Any], Failure] | None = None

    def __call__(self, attempts: AttemptLog, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tap | None:
        owner = arg(args, kwargs, self.index, self.name)
        func = getattr(owner, self.attribute, None)
        if not callable(func):
            return None
        setattr(owner, self.attribute, attempts.wrap(func, self.failure))
        return args, kwargs, lambda: setattr(owner, self.attribute, func)


@dataclass(frozen=True)
class ObservedRetry(InvokerSpec):
    """CrossBridge's own retry loop on this row, observed (see the module docstring).

    ``loop`` names it (the audit shows it); ``max_attempts`` is the loop's limit, fixed or read from the call
    (``max_attempts(args, kwargs)``); ``tap`` routes each attempt through the call's attempt log.
    """

    loop: str
    max_attempts: int | Callable[[tuple[Any, ...], dict[str, Any]], int]
    tap: TapFn

    def build(self, env: InvokerEnv, inner: Invoker | None) -> Invoker:
        proceed = call_next(inner)
        observing = self._observing(tally_for(env.meter, env.area, env.target.span))

        if env.is_async:
            async def invoke_async(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                                   span: Span) -> Any:
                with observing(span, args, kwargs) as (args, kwargs):
                    return await proceed(original, args, kwargs, span)

            return invoke_async

        def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
            with observing(span, args, kwargs) as (args, kwargs):
                return proceed(original, args, kwargs, span)

        return invoke

    def _observing(self, tally: Tally) -> Callable[[Span, tuple[Any, ...], dict[str, Any]],
                                                   contextlib.AbstractContextManager[Args]]:
        where = f"observing {self.loop}"
        not_begun: tuple[AttemptLog, Tap] | None = None

        @guarded(where, not_begun)
        def begin(span: Span, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[AttemptLog, Tap] | None:
            limit = self.max_attempts if isinstance(self.max_attempts, int) else self.max_attempts(args, kwargs)
            attempts = AttemptLog(span, max_attempts=max(1, int(limit)), tally=tally)
            tapped = self.tap(attempts, args, kwargs)
            return None if tapped is None else (attempts, tapped)

        @contextlib.contextmanager
        def observing(span: Span, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Args]:
            begun = begin(span, args, kwargs)
            if begun is None:
                yield args, kwargs
                return
            attempts, (args, kwargs, undo) = begun
            try:
                yield args, kwargs
            finally:
                with contained(where):
                    if undo is not None:
                        undo()
                with contained(where):
                    attempts.close()

        return observing
