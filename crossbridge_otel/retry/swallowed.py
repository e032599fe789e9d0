"""Evidence about a failure CrossBridge swallowed: which exception it caught, and whether it reached commit.

CrossBridge's storage backends catch every exception, log it and return ``False`` (TARGETS §3). To decide
whether such an attempt is worth repeating, the retry layer runs the attempt under :func:`observe`, a
per-thread profile hook (``sys.setprofile``, only on the calling thread and only for that attempt) that notes

- the last exception being *handled* while a function is called (CrossBridge's ``except`` block calls its
  logger, so the swallowed exception is visible through ``sys.exc_info()`` at that moment). One raised and
  handled *while handling* the noted one (its ``__context__`` chain holds it) does not replace it: logging's
  ``isEnabledFor`` handles a ``KeyError`` of its own on its first call after a level change, inside that
  ``except`` block, and CrossBridge's failure, not logging's cache miss, is what the retry layer must judge;
- whether a method named ``commit`` was entered (the C ``connection.commit`` of psycopg2 or sqlite3, or a
  Python proxy of it). A write attempt that reached commit is never retried: the rows may be stored.

It is only used for targets that swallow failures (a ``Target.outcome``), never on the hot paths. When the
thread already has a profiler (cProfile, a debugger's profile hook), nothing is installed and the evidence is
reported as unavailable, so writes are then not retried.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["Evidence", "observe"]


class Evidence:
    """What one attempt revealed: ``exc`` (or None), ``reached_commit``, and whether it was ``observed`` at all."""

    __slots__ = ("exc", "observed", "reached_commit")

    def __init__(self) -> None:
        self.exc: BaseException | None = None
        self.reached_commit = False
        self.observed = False


def observe(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], evidence: Evidence) -> Any:
    """Call ``fn(*args, **kwargs)`` under the profile hook, filling ``evidence``; returns ``fn``'s result.

    An exception raised by ``fn`` propagates unchanged (the hook is removed first; the evidence is kept).
    """
    if sys.getprofile() is not None:
        return fn(*args, **kwargs)
    baseline = sys.exc_info()[1]
    exc_info = sys.exc_info

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_call":
            if getattr(arg, "__name__", None) == "commit":
                evidence.reached_commit = True
        elif event == "call":
            if frame.f_code.co_name == "commit":
                evidence.reached_commit = True
        else:
            return
        current = exc_info()[1]
        if current is not None and current is not baseline and current is not evidence.exc:
            noted = evidence.exc
            if noted is None or not _raised_while_handling(current, noted):
                evidence.exc = current

    evidence.observed = True
    sys.setprofile(hook)
    try:
        return fn(*args, **kwargs)
    finally:
        sys.setprofile(None)


def _raised_while_handling(exc: BaseException, noted: BaseException) -> bool:
    """Whether ``noted`` is in ``exc``'s ``__context__`` chain (bounded: a chain can loop)."""
    context = exc.__context__
    for _ in range(32):
        if context is None:
            return False
        if context is noted:
            return True
        context = context.__context__
    return False
