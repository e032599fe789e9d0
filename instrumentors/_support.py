"""Small helpers shared by the execution, translation, orchestration, repo and services instrumentors.

- :func:`after_call`: an invoker factory that reads attributes from ``self`` (or the arguments) once the
  call is over, for the values CrossBridge only decides inside the call (the parser chosen, ...);
- :func:`observer`: makes CrossBridge's *own* retry loops visible as ``retry`` span events (TELEMETRY.md)
  without adding a second retry, on top of :func:`crossbridge_otel.retry.invoker.observe_attempts`: it wraps the
  callable each attempt calls, and also reads failures CrossBridge only returns (a FAILED result, a non-200
  response); a failed attempt is recorded when the next one starts (``retry.delay_s`` is the measured
  pause) or, for the last one, when the operation ends (``retry.will_retry`` false);
- value helpers that keep attributes bounded (enum values, short text, file names).

Everything that runs on the application's call path is behind the guard.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import Span

from crossbridge_otel._guard import report_failure
from crossbridge_otel.patching import subprocesses
from crossbridge_otel.patching.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.patching.targets import Invoker, InvokerEnv, Target
from crossbridge_otel.redaction import redact
from crossbridge_otel.retry.attempts import AttemptLog, tally_for

__all__ = [
    "AttemptObserver", "RunsCommands", "after_call", "bounded", "enum_value", "file_name", "looks_like_path",
    "observer", "printed_error", "tee_stdout",
]

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


class AttemptObserver(AttemptLog):
    """An :class:`~crossbridge_otel.retry.attempts.AttemptLog` whose wrappers also read failures CrossBridge only
    returns (``failure(result)``), for sync and async callables; use :func:`observer` to build one."""

    def wrap(self, func: Callable[..., Any],
             failure: Callable[[Any], tuple[str, str] | None] | None = None) -> Callable[..., Any]:
        """``func`` observed: each call is an attempt; an exception or ``failure(result)`` marks it failed."""

        @functools.wraps(func)
        def attempt(*args: Any, **kwargs: Any) -> Any:
            self._guarded(self.start)
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
            self._guarded(self.start)
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                self.failed(exc)
                raise
            self._check(result, failure)
            return result

        return attempt

    def finish(self) -> None:
        """End of the loop (guarded :meth:`close`)."""
        self._guarded(self.close)

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as exc:
            report_failure("observing CrossBridge's retry loop", exc)

    def _check(self, result: Any, failure: Callable[[Any], tuple[str, str] | None] | None) -> None:
        found = None
        if failure is not None:
            try:
                found = failure(result)
            except Exception as exc:
                report_failure("observing CrossBridge's retry loop (result)", exc)
        if found is not None:
            self.failed(None, error=found[0], message=found[1])
        else:
            self._guarded(self.succeeded)


def observer(span: Span, max_attempts: int, target: Target, env: InvokerEnv) -> AttemptObserver:
    """An observer of CrossBridge's own loop on ``span``; attempts also counted in ``crossbridge.retry.attempts``."""
    return AttemptObserver(span, max_attempts=max(1, int(max_attempts)),
                           tally=tally_for(env.meter, env.area, target.span))


class RunsCommands(CrossBridgeInstrumentor):
    """Base of the areas whose CrossBridge code runs commands: holds the subprocess layer while instrumented
    (``<area>.command`` child spans and ``TRACEPARENT`` for the child; see
    :mod:`crossbridge_otel.patching.subprocesses`)."""

    def _on_instrument(self, **kwargs: Any) -> None:
        self._subprocess_acquired = True
        subprocesses.acquire(kwargs.get("tracer_provider"), self._settings)

    def _on_uninstrument(self) -> None:
        if getattr(self, "_subprocess_acquired", False):
            self._subprocess_acquired = False
            subprocesses.release()


class _ThreadTee:
    """Stands in for ``sys.stdout`` during one call: every write goes through to the real stream unchanged;
    the lines written by the calling thread are also kept."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._thread = threading.get_ident()
        self.parts: list[str] = []

    def write(self, text: str) -> Any:
        if threading.get_ident() == self._thread and len(self.parts) < 64:
            self.parts.append(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_printed = threading.local()


def tee_stdout(target: Target, env: InvokerEnv) -> Invoker:
    """Invoker factory for calls that ``print()`` their error instead of raising or logging it (CrossBridge's
    coverage.py and Istanbul parsers): stdout is teed for the call, and :func:`printed_error` then returns
    the last ``Error...`` line this thread printed, for the outcome to use as the span's description."""

    def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
        stream = sys.stdout
        tee = _ThreadTee(stream)
        sys.stdout = tee
        try:
            return original(*args, **kwargs)
        finally:
            if sys.stdout is tee:
                sys.stdout = stream
            _printed.lines = "".join(tee.parts).splitlines()

    return invoke


def printed_error() -> str:
    """The last line starting with ``Error`` printed during the last :func:`tee_stdout` call on this thread."""
    lines = getattr(_printed, "lines", [])
    _printed.lines = []
    errors = [line.strip() for line in lines if line.strip().startswith("Error")]
    return redact(errors[-1])[:_MAX_TEXT] if errors else ""
