"""The one guard every hook and wrapper body runs behind: "running fine, less telemetry".

A failure inside the distribution is reported once per place on the ``crossbridge_otel`` logger and never
reaches the application. With ``CROSSBRIDGE_OTEL_STRICT=true`` (the project's own tests) it is re-raised.

Outside the per-call hot path, code is contained with :func:`contained` (a block) or :func:`guarded` (a whole
function, with the value to return when it fails). The wrappers' per-call path keeps its inlined
``try``/``except Exception`` + :func:`report_failure`: a context manager costs about a microsecond per call there.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

from crossbridge_otel._voice import one_line, say

__all__ = ["contained", "contained_failures", "guarded", "report_failure", "reset", "strict"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

_lock = threading.Lock()
_reported: dict[str, int] = {}


def strict() -> bool:
    """True when failures inside the distribution must be re-raised (read on each failure, not hot)."""
    return os.environ.get("CROSSBRIDGE_OTEL_STRICT", "").strip().lower() in {"1", "true", "yes", "on"}


def report_failure(where: str, exc: BaseException) -> None:
    """Count a contained failure, say the first one for ``where`` in one line, re-raise it in strict mode.

    The line goes through :func:`crossbridge_otel._voice.say`, which cannot raise (the application may have made
    logging raise: a filter that raises, a broken handler) and puts the traceback at DEBUG only.
    """
    with _lock:
        count = _reported.get(where, 0)
        _reported[where] = count + 1
    if count == 0:
        say(
            logging.WARNING,
            f"crossbridge-otel: instrumentation failure in {where} was contained ({type(exc).__name__}: "
            f"{one_line(exc, 200)}); the application goes on with less telemetry",
            exc=exc,
        )
    if strict():
        raise exc


@contextlib.contextmanager
def contained(where: str) -> Iterator[None]:
    """Run a block behind the guard: an ``Exception`` inside it is reported for ``where`` and goes no further."""
    try:
        yield
    except Exception as exc:
        report_failure(where, exc)


def guarded(where: str, default: _R) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorate a function so an ``Exception`` inside it is reported for ``where`` and ``default`` returned."""

    def decorate(func: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(func)
        def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                report_failure(where, exc)
                return default

        return run

    return decorate


def contained_failures() -> dict[str, int]:
    """How many failures each place has contained so far (for doctor and tests)."""
    with _lock:
        return dict(_reported)


def reset() -> None:
    """Forget the contained-failure counts, so the next failure in each place is logged again (tests)."""
    with _lock:
        _reported.clear()
