"""Small helpers shared by the execution, translation, orchestration, repo and services instrumentors.

- :func:`after_call`: an invoker factory that reads attributes from ``self`` (or the arguments) once the
  call is over, for the values CrossBridge only decides inside the call (the parser chosen, ...);
- :class:`AttemptObserver`: makes CrossBridge's *own* retry loops visible as ``retry`` span events
  (TELEMETRY.md) without adding a second retry: it wraps the callable each attempt calls and records a
  failed attempt when the next one starts (``retry.delay_s`` is the measured pause) or, for the last one,
  when the operation ends (``retry.will_retry`` false);
- value helpers that keep attributes bounded (enum values, short text, file names).

Everything that runs on the application's call path is behind the guard.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import Span

from crossbridge_otel._guard import report_failure
from crossbridge_otel.redaction import redact
from crossbridge_otel.retry import record_attempt
from crossbridge_otel.targets import Invoker, InvokerEnv, Target

__all__ = ["AttemptObserver", "after_call", "bounded", "enum_value", "file_name", "looks_like_path"]

_MAX_TEXT = 256

AfterFn = Callable[[Span, tuple[Any, ...], dict[str, Any], Any], None]


def enum_value(value: Any) -> Any:
    """``value.value`` for an enum member, the value itself otherwise (None stays None)."""
    return getattr(value, "value", value)


def bounded(text: Any, limit: int = _MAX_TEXT) -> str | None:
    """``text`` redacted and cut to ``limit`` characters; None for None."""
    if text is None:
        return None
    value = redact(str(text))
    return value if len(value) <= limit else value[: limit - 1] + "…"


def file_name(path: Any) -> str | None:
    """The last component of a path (never the directory: bounded and free of user names)."""
    if path is None or path == "":
        return None
    return bounded(os.path.basename(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else path)


def looks_like_path(value: Any) -> bool:
    """True for a string that is a file path rather than a framework name (``translate_file``'s bug)."""
    if not isinstance(value, str) or not value:
        return False
    return "/" in value or "\\" in value or os.path.splitext(value)[1] != ""


def after_call(read: AfterFn) -> Callable[[Target, InvokerEnv], Invoker]:
    """Invoker factory: call through, then ``read(span, args, kwargs, result)`` (result None on raise)."""

    def factory(target: Target, env: InvokerEnv) -> Invoker:
        def invoke(
            original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span
        ) -> Any:
            result = None
            try:
                result = original(*args, **kwargs)
                return result
            finally:
                try:
                    read(span, args, kwargs, result)
                except Exception as exc:
                    report_failure(f"after-call attributes of {target.span}", exc)

        return invoke

    return factory


class AttemptObserver:
    """Records the attempts of a retry loop CrossBridge runs itself, as ``retry`` events on ``span``."""

    def __init__(self, span: Span, max_attempts: int) -> None:
        self.span = span
        self.max_attempts = max(1, int(max_attempts))
        self.attempts = 0
        self._pending: tuple[BaseException | None, str | None, str | None, float] | None = None

    def begin(self) -> None:
        """An attempt starts: the previous failure (if any) was retried after the measured pause."""
        try:
            self.attempts += 1
            if self._pending is not None:
                exc, error, message, failed_at = self._pending
                self._pending = None
                record_attempt(self.span, attempt=self.attempts - 1, max_attempts=self.max_attempts,
                               will_retry=True, delay_s=time.perf_counter() - failed_at, exc=exc,
                               error=error, message=message)
        except Exception as exc:
            report_failure("retry observation (begin)", exc)

    def failed(self, exc: BaseException | None = None, *, error: str | None = None,
               message: str | None = None) -> None:
        """The current attempt failed (an exception, or a failure CrossBridge only returns)."""
        self._pending = (exc, error, message, time.perf_counter())

    def finish(self) -> None:
        """The operation is over: a failure still pending was the last attempt; sets ``retry.attempts``."""
        try:
            if self._pending is not None:
                exc, error, message, _ = self._pending
                self._pending = None
                record_attempt(self.span, attempt=self.attempts, max_attempts=self.max_attempts,
                               will_retry=False, delay_s=0.0, exc=exc, error=error, message=message)
            if self.attempts:
                self.span.set_attribute("retry.attempts", self.attempts)
        except Exception as exc:
            report_failure("retry observation (finish)", exc)

    def wrap(self, func: Callable[..., Any],
             failure: Callable[[Any], tuple[str, str] | None] | None = None) -> Callable[..., Any]:
        """``func`` observed: each call is an attempt; an exception or ``failure(result)`` marks it failed."""

        @functools.wraps(func)
        def attempt(*args: Any, **kwargs: Any) -> Any:
            self.begin()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                self.failed(exc)
                raise
            self._check(result, failure)
            return result

        return attempt

    def wrap_async(self, func: Callable[..., Any],
                   failure: Callable[[Any], tuple[str, str] | None] | None = None) -> Callable[..., Any]:
        """The coroutine-function version of :meth:`wrap`."""

        @functools.wraps(func)
        async def attempt(*args: Any, **kwargs: Any) -> Any:
            self.begin()
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                self.failed(exc)
                raise
            self._check(result, failure)
            return result

        return attempt

    def _check(self, result: Any, failure: Callable[[Any], tuple[str, str] | None] | None) -> None:
        if failure is None:
            return
        try:
            found = failure(result)
        except Exception as exc:
            report_failure("retry observation (result)", exc)
            return
        if found is not None:
            self.failed(None, error=found[0], message=found[1])
