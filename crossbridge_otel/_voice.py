"""The distribution's voice, and its own threads kept out of the application's logs.

Two rules (issue 11):

- **Our threads stay out of the application's logs.** The export workers, the exit flush and the exporters'
  shutdown run on threads marked with :func:`mark_thread` (or inside :func:`on_our_thread`). Whatever is logged
  there (urllib3's "Starting new HTTP connection", the SDK exporters' "Transient error ... retrying", grpc, our
  own exporters' warnings) never meets the application's loggers' filters or handlers, and is not printed
  then: :func:`install` wraps ``logging.Logger.handle`` once, and on a marked thread a record is diverted
  instead. A WARNING+ record is kept as that thread's problem (:func:`take_problem`), which the export code
  folds into the one line it says at exit; with the ``crossbridge_otel`` logger at DEBUG every diverted record
  is repeated there in full. So an export worker never writes to stderr or calls a handler the application
  could block. On the application's threads the wrapper costs one thread-local read (README, Performance).
- **One voice.** The distribution speaks only on the ``crossbridge_otel`` logger, one line per kind of problem
  (tracebacks only at DEBUG). When a process's pipeline is installed, that logger gets its own stderr handler
  and stops propagating, so a host's raising filter, blocking handler or file handler never sees our lines and
  CrossBridge's own run log is what it is without us. Its level is WARNING, or ``OTEL_LOG_LEVEL``
  (``debug``, ``info``, ``warning``, ``error``); a logger the user configured first is left alone.
- The OpenTelemetry SDK and instrumentations (``opentelemetry.*`` loggers) are part of the distribution here:
  what they log on the application's threads (an attribute of a type the SDK refuses, a value it cuts) goes
  to the same voice, the first record of each logger as one line, the rest at DEBUG; nothing of theirs reaches
  the application's handlers either. (Same rule: left alone if the user gave that logger handlers.)

Nothing here runs on import.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = [
    "NAME", "install", "mark_thread", "on_our_thread", "one_line", "ours", "problem_of", "say", "take_problem",
    "uninstall",
]

NAME = "crossbridge_otel"
_MARK = "__crossbridge_otel_diverts__"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "warning": logging.WARNING,
           "error": logging.ERROR}
_log = logging.getLogger(NAME)
_install_lock = threading.Lock()


class _Thread(threading.local):
    ours = False  # class attribute: reading it on a thread that never set it costs no __init__


_thread = _Thread()
_problems: dict[int, str] = {}  # thread ident -> first WARNING+ text since that thread last took it


def mark_thread() -> None:
    """Mark the calling thread as one of ours for the rest of its life (export workers)."""
    _thread.ours = True


@contextlib.contextmanager
def on_our_thread() -> Iterator[None]:
    """Treat the calling thread as ours inside the block (code of ours run on a thread the SDK owns)."""
    before = _thread.ours
    _thread.ours = True
    try:
        yield
    finally:
        _thread.ours = before


def ours() -> bool:
    """Whether the calling thread is one of ours."""
    return _thread.ours


def take_problem() -> str | None:
    """The first WARNING+ text logged on this thread since the last call (then forgotten)."""
    return _problems.pop(threading.get_ident(), None)


def problem_of(thread: threading.Thread | None) -> str | None:
    """What ``thread`` (one of ours, still busy: an export the exit gave up on) has logged so far, if anything."""
    return _problems.get(thread.ident or 0) if thread is not None else None


def one_line(text: object, limit: int = 300) -> str:
    """``text`` as one bounded line (exception messages can span many)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def say(level: int, message: str, *, exc: BaseException | None = None) -> None:
    """Say one line on the ``crossbridge_otel`` logger; ``exc``'s traceback follows at DEBUG. Never raises.

    ``logging.disable`` is the application silencing its own logging: our few lines (a drop report at exit)
    still go out, unless our logger was switched off or raised above ``level``.
    """
    try:
        if _log.disabled or _log.getEffectiveLevel() > level:
            return
        _emit(_log.makeRecord(NAME, level, __file__, 0, message, (), None))
        if exc is not None and _log.getEffectiveLevel() <= logging.DEBUG:
            _emit(_log.makeRecord(NAME, logging.DEBUG, __file__, 0, "crossbridge-otel: details of the above",
                                  (), (type(exc), exc, exc.__traceback__)))
    except Exception:  # (the voice is the last resort: nothing is left to report to)
        pass


# -- the application's threads never see ours ------------------------------------------------------------


_original_handle: Any = None  # logging.Logger.handle as it was before install()


def _emit(record: logging.LogRecord) -> None:
    """Hand ``record`` to the ``crossbridge_otel`` logger's handlers, past the diversion (any thread)."""
    if _original_handle is not None:
        _original_handle(_log, record)
    else:
        _log.handle(record)


def _divert(logger: logging.Logger, record: logging.LogRecord) -> None:
    """A record logged on one of our threads: keep a problem's text; repeat it at DEBUG."""
    try:
        if record.levelno >= logging.WARNING:
            # the first is the cause ("Transient error ... Connection refused"); later ones are its echoes
            ident = threading.get_ident()
            if ident not in _problems and len(_problems) < 256:
                _problems[ident] = one_line(record.getMessage()).removeprefix("crossbridge-otel: ")
        if _log.disabled or _log.getEffectiveLevel() > logging.DEBUG:
            return
        if record.name.startswith(NAME):
            _emit(record)
            return
        _emit(_log.makeRecord(NAME, logging.DEBUG, record.pathname, record.lineno, "crossbridge-otel: [%s] %s: %s",
                              (record.name, record.levelname, record.getMessage()), record.exc_info))
    except Exception:  # (a malformed library record on our thread: nothing to do)
        pass


def install() -> None:
    """Wrap ``logging.Logger.handle`` (once) and give the ``crossbridge_otel`` logger its own stderr line."""
    global _original_handle
    with _install_lock:
        _configure_voice()
        current = logging.Logger.handle
        if getattr(current, _MARK, None) is not None:
            return
        original = current
        state = _thread

        @functools.wraps(original)
        def handle(self: logging.Logger, record: logging.LogRecord) -> Any:
            # the application's path costs one thread-local read; on our threads nothing goes further
            if state.ours:
                return _divert(self, record)
            return original(self, record)

        setattr(handle, _MARK, original)
        _original_handle = original
        logging.Logger.handle = handle  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore ``logging.Logger.handle`` if ours is still the one installed (tests)."""
    global _original_handle
    with _install_lock:
        original = getattr(logging.Logger.handle, _MARK, None)
        if original is not None:
            logging.Logger.handle = original  # type: ignore[method-assign]
        _original_handle = None
        while _undo:
            _undo.pop()()


class _StderrLine(logging.StreamHandler):  # type: ignore[type-arg]
    """Our lines on whatever ``sys.stderr`` is at the time; a closed or broken stderr is not our problem."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(message)s"))

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass

    def handleError(self, record: logging.LogRecord) -> None:  # logging's name
        pass


def _expected(record: logging.LogRecord) -> bool:
    """A record that says nothing about this run: the auto-instrumentation loader skipping a contrib instrumentation
    whose library is installed at a version it does not support (SQLAlchemy 2.1 beside CrossBridge, at every start).
    The contrib then does nothing, as documented; the line is kept for DEBUG."""
    return record.name.startswith("opentelemetry.instrumentation.auto_instrumentation") and \
        "so nothing can be instrumented" in str(record.msg)


class _OncePerLogger(logging.Handler):
    """The SDK's and instrumentations' records: the first WARNING+ of each logger said in one line, all at DEBUG."""

    def __init__(self) -> None:
        super().__init__()
        self._said: set[str] = set()

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        try:
            if record.levelno >= logging.WARNING and record.name not in self._said and len(self._said) < 64 \
                    and not _expected(record):
                self._said.add(record.name)
                say(logging.WARNING, f"crossbridge-otel: [{record.name}] {one_line(record.getMessage())} "
                                     "(more at DEBUG: OTEL_LOG_LEVEL=debug)")
            elif not _log.disabled and _log.getEffectiveLevel() <= logging.DEBUG:
                _emit(_log.makeRecord(NAME, logging.DEBUG, record.pathname, record.lineno,
                                      "crossbridge-otel: [%s] %s: %s",
                                      (record.name, record.levelname, record.getMessage()), record.exc_info))
        except Exception:  # (a malformed record: nothing to do)
            pass
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


_undo: list[Any] = []  # how to take back what _configure_voice changed (uninstall, for tests)


def _own(logger: logging.Logger, handler: logging.Handler, level: int | None = None) -> None:
    """Give ``logger`` our ``handler`` and stop its propagation, unless the user gave it handlers."""
    if logger.handlers:
        return  # configured by the user (or already by us)
    before = (logger.propagate, logger.level)
    logger.addHandler(handler)
    logger.propagate = False
    if level is not None and logger.level == logging.NOTSET:
        logger.setLevel(level)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.propagate = before[0]
        logger.setLevel(before[1])

    _undo.append(undo)


def _configure_voice() -> None:
    wanted = os.environ.get("OTEL_LOG_LEVEL", "").strip().lower()
    _own(_log, _StderrLine(), _LEVELS.get(wanted, logging.WARNING))
    _own(logging.getLogger("opentelemetry"), _OncePerLogger())
