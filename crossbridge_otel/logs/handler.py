"""The handler that turns a CrossBridge ``logging.LogRecord`` into one OpenTelemetry log record.

What one exported record carries (see the README's logs section):

- body: the message exactly as CrossBridge renders it (``record.getMessage()``, kwargs already folded in),
  with credentials redacted, cut at 64 KiB (:data:`MAX_BODY`: a collector refuses a whole batch for one huge text);
- ``crossbridge.category``; the logger name is the instrumentation scope name (as the SDK's handler does);
- ``code.file.path`` / ``code.function.name`` (module-qualified) / ``code.line.number`` of the real caller,
  past ``core/logging/logger.py``;
- ``crossbridge.log.<key>`` for every field CrossBridge folded into its text (``**kwargs``, ``extra=``,
  ``add_context``) or a plain logger got through ``extra=``; bounded, credentials masked;
- ``exception.type`` / ``exception.message`` / ``exception.stacktrace`` when the record has ``exc_info``;
- severity: TRACE (5) → TRACE, SUCCESS (25) → INFO2 with text ``SUCCESS``, the rest as the SDK maps them;
- the trace and span ids of the active span (the SDK reads the current context at emit).

Hot-path notes: a record below its logger's level never reaches a handler, so nothing here costs it
anything. For an exported record, the OTel logger and category are resolved once per logger name, the
handler lock is skipped (the export only reads the record), the caller's frame is reached with one
``sys._getframe`` jump, CrossBridge's locals are read only when its text shows folded fields, and the
redaction regexes run only on text holding a credential-like word (fields folded into a clean text are
clean too).
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from types import CodeType, FrameType
from typing import Any

from opentelemetry._logs import Logger as OTelLogger
from opentelemetry._logs import LoggerProvider, SeverityNumber, get_logger

from crossbridge_otel._guard import report_failure
from crossbridge_otel.patching.wrapping import error_type
from crossbridge_otel.redaction import MASK, is_secret_key, redact
from crossbridge_otel.version import __version__

__all__ = ["BridgeHandler", "severity"]

FIELD_PREFIX = "crossbridge.log."
MAX_VALUE = 256  # characters kept of a field value (attributes must stay bounded)
MAX_BODY = 65_536  # characters kept of a record's text
_HIDDEN_CONTEXT = frozenset({"category", "brand"})  # CrossBridge keeps these out of its text too
_SKIPPED_NAMES = ("opentelemetry", "crossbridge_otel")  # never bridged: the pipeline's own logs
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# Frames above _plain_call/_wrapper_call, when a logger method called by CrossBridge (or by the plain
# logger's caller) reaches us: handle, Logger.callHandlers, Logger.handle, Logger._log, Logger.<level>;
# the next one is CrossBridge's method (or the plain logger's caller). Jumping there with sys._getframe()
# is much cheaper than walking f_back (each step builds a frame object); a mismatch falls back to walking
# or to the record's own location. With the distribution's pipeline installed, ``Logger.handle`` is wrapped
# (crossbridge_otel._voice keeps its threads' records out of the application's handlers): one frame more.
_DEPTH = 6
# Substrings that make a text worth the (slow) redaction regexes; most log lines have none of them.
_SUSPECT = ("://", "pass", "pwd", "secret", "token", "key", "cred", "auth", "session", "cookie", "bearer",
            "basic")
_OTEL_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}  # as the SDK's LoggingHandler names them
_SEVERITY: dict[int, tuple[SeverityNumber, str]] = {
    5: (SeverityNumber.TRACE, "TRACE"),
    25: (SeverityNumber.INFO2, "SUCCESS"),
}


def _std_to_otel(levelno: int) -> SeverityNumber:
    """The OpenTelemetry log data model's mapping of a stdlib level: each ten-step band (DEBUG 10, INFO 20, ...)
    starts at its severity's first number and climbs at most three (DEBUG2..DEBUG4); below 10 is unspecified.

    (The SDK has the same function, but only in its private ``_internal`` module.)
    """
    if levelno < logging.DEBUG:
        return SeverityNumber.UNSPECIFIED
    if levelno > logging.CRITICAL + 3:
        return SeverityNumber.FATAL4
    band = min(levelno // 10, 5)  # 1 DEBUG .. 5 FATAL
    return SeverityNumber(1 + 4 * band + min(levelno - band * 10, 3))


def severity(levelno: int, levelname: str) -> tuple[SeverityNumber, str]:
    """The OTel severity number and text of a stdlib level (CrossBridge's TRACE and SUCCESS included)."""
    found = _SEVERITY.get(levelno)
    if found is None:
        found = _SEVERITY[levelno] = (_std_to_otel(levelno), _OTEL_TEXT.get(levelname, levelname))
    return found


def _suspect(text: str) -> bool:
    lowered = text.lower()
    for suspect in _SUSPECT:  # noqa: SIM110 (a plain loop is twice as fast as any() over a generator)
        if suspect in lowered:
            return True
    return False


def _clean(text: str) -> str:
    return redact(text) if _suspect(text) else text


_SECRET_KEYS: dict[str, bool] = {}  # field names are few (CrossBridge's kwargs): remember the verdict


def _secret(key: str) -> bool:
    verdict = _SECRET_KEYS.get(key)
    if verdict is None:
        verdict = is_secret_key(key)
        if len(_SECRET_KEYS) < 4096:
            _SECRET_KEYS[key] = verdict
    return verdict


def _add_fields(attributes: dict[str, Any], fields: Mapping[str, Any], clean: bool = False) -> None:
    """``crossbridge.log.<key>`` per field; ``clean`` says the text they were folded into had nothing to redact."""
    for key, value in fields.items():
        if key in _HIDDEN_CONTEXT:
            continue
        if clean:
            if not isinstance(value, (bool, int, float, str)):
                value = str(value)
        elif _secret(key):
            value = MASK
        elif not isinstance(value, (bool, int, float)):
            value = _clean(value if isinstance(value, str) else str(value))
        attributes[FIELD_PREFIX + key] = value[:MAX_VALUE] if isinstance(value, str) else value


class _ThreadState(threading.local):
    busy = False  # this thread is inside one of our handlers (guards against re-entrance)


_state = _ThreadState()
_SKIP = object()


class BridgeHandler(logging.Handler):
    """Exports the records it sees, with a fixed ``category`` or one per module from ``categories``.

    A handler with an ``owner`` sits on that one ``crossbridge.<name>`` logger and exports only records
    logged there, so a record that propagates to a bridged parent is still exported once.
    ``wrapper_file`` is the ``co_filename`` of CrossBridge's ``core/logging/logger.py``: records located
    there come from a ``CrossBridgeLogger`` method, and the handler reads the folded fields and the real
    caller from the stack. ``last_resort=True`` (package loggers) hands a WARNING+ record that met no other
    handler to ``logging.lastResort``, as the stdlib would have done without us.
    """

    def __init__(
        self,
        logger_provider: LoggerProvider | None,
        category: str | None = None,
        categories: Callable[[str], str] | None = None,
        wrapper_file: str | None = None,
        last_resort: bool = False,
        owner: str | None = None,
    ) -> None:
        super().__init__()
        self._last_resort = last_resort
        self.category = category
        self._categories = categories
        self._provider = logger_provider
        self._wrapper_file = wrapper_file
        self._scopes: dict[str, Any] = {}
        self._owner = owner
        self._owner_scope = self._scope(owner) if owner is not None else None

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        """Export ``record`` (the whole hot path lives here: every Python call level costs)."""
        # No handler lock: the export only reads the record and the SDK logger is thread-safe.
        if self.filters and not self.filter(record):
            return False
        state = _state
        if state.busy:
            return False  # re-entered: something logged while this thread was exporting
        state.busy = True
        try:
            if self._owner is None:
                scope = self._scopes.get(record.name) or self._scope(record.name)
                if scope is _SKIP:
                    return False
            elif record.name == self._owner:
                scope = self._owner_scope
            else:
                return False  # propagated from a child logger, which exports its own records
            attributes: dict[str, Any] = {"crossbridge.category": scope[1]}
            message = record.getMessage()
            if len(message) > MAX_BODY:  # a 10 MB text would make the collector refuse the whole batch
                message = f"{message[:MAX_BODY]}... [{len(message) - MAX_BODY} more characters]"
            clean = not _suspect(message)
            if record.pathname == self._wrapper_file:
                # CrossBridge folds fields as "text [k=v ...]": no closing bracket, no fields to read
                _wrapper_call(record, attributes, self._wrapper_file, clean, message.endswith("]"))
            else:
                _plain_call(record, attributes)
            if record.exc_info and record.exc_info[1] is not None:
                _exception(record.exc_info, attributes)
            number, text = _SEVERITY.get(record.levelno) or severity(record.levelno, record.levelname)
            otel_logger: OTelLogger = scope[0]
            otel_logger.emit(
                timestamp=int(record.created * 1e9),
                severity_number=number,
                severity_text=text,
                body=message if clean else redact(message),
                attributes=attributes,
            )
        except Exception as exc:
            report_failure("exporting a CrossBridge log record", exc)
        finally:
            state.busy = False
        if self._last_resort and record.levelno >= logging.WARNING and not logging.root.handlers:
            _last_resort(record, self)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def _scope(self, name: str) -> Any:
        if name.startswith(_SKIPPED_NAMES):
            scope: Any = _SKIP
        else:
            category = self.category or (self._categories(name) if self._categories else "general")
            scope = (get_logger(name, __version__, self._provider), category)
        self._scopes[name] = scope
        return scope

def _last_resort(record: logging.LogRecord, ours: logging.Handler) -> None:
    """Hand ``record`` to ``logging.lastResort`` when no handler but ours is on its way (as callHandlers)."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        if any(handler is not ours for handler in logger.handlers):
            return
        logger = logger.parent if logger.propagate else None
    if logging.lastResort is not None and record.levelno >= logging.lastResort.level:
        logging.lastResort.handle(record)


_QUALIFIED: dict[CodeType, str] = {}  # code object -> module-qualified function name


def _location(frame: FrameType, attributes: dict[str, Any]) -> None:
    code = frame.f_code
    qualified = _QUALIFIED.get(code)
    if qualified is None:
        module = frame.f_globals.get("__name__", "")
        name = getattr(code, "co_qualname", code.co_name)  # co_qualname is 3.11+
        qualified = f"{module}.{name}" if module else name
        if len(_QUALIFIED) < 4096:
            _QUALIFIED[code] = qualified
    attributes["code.file.path"] = code.co_filename
    attributes["code.function.name"] = qualified
    attributes["code.line.number"] = frame.f_lineno


def _record_location(record: logging.LogRecord, attributes: dict[str, Any]) -> None:
    attributes["code.file.path"] = record.pathname
    attributes["code.function.name"] = record.funcName
    attributes["code.line.number"] = record.lineno


def _frame(depth: int) -> FrameType | None:
    try:
        return sys._getframe(depth + 1)
    except ValueError:
        return None


def _plain_call(record: logging.LogRecord, attributes: dict[str, Any]) -> None:
    """A stdlib logger: the record's own location (qualified from the stack) and its ``extra=`` fields."""
    for depth in (_DEPTH, _DEPTH + 1, _DEPTH + 2):  # Logger.handle wrapped; logger.exception(): one frame more
        frame = _frame(depth)
        if frame is not None and frame.f_lineno == record.lineno and frame.f_code.co_filename == record.pathname:
            _location(frame, attributes)
            break
    else:  # handed over by a QueueHandler or logged with stacklevel: keep what the record says
        _record_location(record, attributes)
    extra = record.__dict__.keys() - _STANDARD
    if extra:
        _add_fields(attributes, {key: record.__dict__[key] for key in extra})


_KWARGS_NAME: dict[CodeType, tuple[str, str] | None] = {}


def _kwargs_name(code: CodeType) -> tuple[str, str] | None:
    """(self parameter, ``**kwargs`` parameter) of a CrossBridgeLogger method, whatever they are called."""
    if code not in _KWARGS_NAME:
        names = None
        if code.co_flags & inspect.CO_VARKEYWORDS and code.co_argcount:
            index = code.co_argcount + code.co_kwonlyargcount + bool(code.co_flags & inspect.CO_VARARGS)
            names = (code.co_varnames[0], code.co_varnames[index])
        _KWARGS_NAME[code] = names
    return _KWARGS_NAME[code]


def _wrapper_call(
    record: logging.LogRecord, attributes: dict[str, Any], wrapper_file: str, clean: bool, fields: bool
) -> None:
    """A CrossBridgeLogger record: fields from the innermost wrapper method, location from its caller.

    The fields are folded into the record's text, so when that text needed no redaction neither do they.
    """
    frame = _frame(_DEPTH)
    if frame is None or frame.f_code.co_filename != wrapper_file:
        frame = _frame(_DEPTH + 1)  # Logger.handle wrapped by the pipeline
    if frame is None or frame.f_code.co_filename != wrapper_file:
        frame = _frame(2)  # not the usual depth (exception(), another Python): walk up from callHandlers
        while frame is not None and frame.f_code.co_filename != wrapper_file:
            frame = frame.f_back
        if frame is None:
            _record_location(record, attributes)
            return
    names = _kwargs_name(frame.f_code) if fields else None
    if names is not None:
        local = frame.f_locals
        owner_context = getattr(local.get(names[0]), "_context", None)
        if owner_context:
            _add_fields(attributes, owner_context, clean)
        kwargs = local.get(names[1])
        if kwargs:
            _add_fields(attributes, kwargs, clean)
    while frame is not None and frame.f_code.co_filename == wrapper_file:
        frame = frame.f_back
    if frame is None:
        _record_location(record, attributes)
    else:
        _location(frame, attributes)


def _exception(exc_info: Any, attributes: dict[str, Any]) -> None:
    kind, value, tb = exc_info
    attributes["exception.type"] = error_type(value)
    attributes["exception.message"] = _clean(str(value))
    attributes["exception.stacktrace"] = _clean("".join(traceback.format_exception(kind, value, tb)))
