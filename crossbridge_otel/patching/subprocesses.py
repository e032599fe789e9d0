"""Child processes started by CrossBridge stay in the trace: a span per command and ``TRACEPARENT``.

CrossBridge runs test commands with :func:`subprocess.run` (the coverage engine with ``shell=True``, the
pytest adapter with an argument list). There is no stock OpenTelemetry instrumentation for ``subprocess``,
so this module patches two callables, shared by every area that needs it:

- ``subprocess.run``: a child span ``<area>.command`` (``<area>`` = the current span's ``crossbridge.area``)
  with ``process.command_line`` (redacted, bounded), ``process.exit.code``, ``crossbridge.command.timeout_s``
  and ``crossbridge.command.shell``. ``subprocess.TimeoutExpired`` (or any exception) → ERROR with the
  exception recorded and re-raised unchanged; a non-zero exit → ERROR, ``error.type`` ``nonzero_exit``.
- ``subprocess.Popen.__init__``: ``TRACEPARENT`` / ``TRACESTATE`` of the current context in the child's
  environment (a copy of ``os.environ`` when ``env`` is None; the caller's mapping is never mutated).

Both act only while the current span is a recording span of a crossbridge-otel tracer (instrumentation
scope name starting with ``crossbridge_otel``). Outside them (the application's own subprocesses, other
libraries) both are plain pass-throughs: same arguments, same return values, same exceptions.
The ``subprocess_spans`` setting (``CROSSBRIDGE_OTEL_SUBPROCESS_SPANS``) switches the whole module off.

Instrumentors share the patch through a reference count: :func:`acquire` in ``_on_instrument`` and
:func:`release` in ``_on_uninstrument``. The first acquire patches (its tracer provider is used), the last
release puts the original objects back exactly (unless someone else patched on top of us meanwhile).
"""

from __future__ import annotations

import functools
import os
import subprocess
import threading
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import Span, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from crossbridge_otel._guard import report_failure
from crossbridge_otel.patching.wrapping import ORIGINAL_ATTR, SWITCH, mark_exception, mark_failure
from crossbridge_otel.redaction import redact
from crossbridge_otel.settings import Settings
from crossbridge_otel.version import __version__

__all__ = ["SCOPE_PREFIX", "acquire", "active", "command_line", "release"]

SCOPE_PREFIX = "crossbridge_otel"
_MAX_COMMAND = 1024  # characters of process.command_line kept (bounded attribute)
_MAX_STDERR = 200  # characters of the last stderr line kept in a nonzero_exit description
_ENV_POSITION = 9  # index of ``env`` in Popen.__init__(args, bufsize, ..., cwd, env), self excluded
_SHELL_POSITION = 8  # index of ``shell`` in subprocess.run(args, bufsize, ..., close_fds, shell)

_lock = threading.Lock()
_count = 0
_tracer: Tracer | None = None
_saved: dict[str, tuple[Any, Any, Any]] = {}  # name -> (owner, original, installed)
_propagator = TraceContextTextMapPropagator()
_get_current_span = trace_api.get_current_span


def acquire(tracer_provider: TracerProvider | None = None, settings: Settings | None = None) -> bool:
    """Take a reference; the first one patches ``subprocess``. True when the patch is active."""
    global _count, _tracer
    with _lock:
        _count += 1
        if _count > 1:
            return bool(_saved)
        if settings is not None and not settings.subprocess_spans:
            return False
        try:
            _tracer = trace_api.get_tracer(f"{SCOPE_PREFIX}.subprocess", __version__, tracer_provider)
            _install("run", subprocess, subprocess.run, _wrap_run)
            popen_init = subprocess.Popen.__dict__["__init__"]
            _install("Popen.__init__", subprocess.Popen, popen_init, _wrap_popen_init)
        except Exception as exc:
            _restore_all()
            report_failure("patching subprocess", exc)
        return bool(_saved)


def release() -> None:
    """Drop a reference; the last one restores ``subprocess.run`` and ``Popen.__init__`` exactly."""
    global _count, _tracer
    with _lock:
        if _count == 0:
            return
        _count -= 1
        if _count == 0:
            _restore_all()
            _tracer = None


def active() -> bool:
    """True while the patch is in place (for doctor and tests)."""
    return bool(_saved)


def command_line(args: Any) -> str:
    """The redacted, bounded ``process.command_line`` of a string or a sequence of arguments."""
    if isinstance(args, (str, bytes, os.PathLike)):
        text = os.fsdecode(args)
    else:
        text = " ".join(os.fsdecode(part) if isinstance(part, (bytes, os.PathLike)) else str(part)
                        for part in args)
    text = redact(text)
    return text if len(text) <= _MAX_COMMAND else text[: _MAX_COMMAND - 1] + "…"


def _install(name: str, owner: Any, original: Any, make: Callable[[Any], Any]) -> None:
    installed = make(original)
    functools.update_wrapper(installed, original)
    setattr(installed, ORIGINAL_ATTR, original)
    _saved[name] = (owner, original, installed)
    setattr(owner, name.rsplit(".", 1)[-1], installed)


def _restore_all() -> None:
    for name, (owner, original, installed) in list(_saved.items()):
        attr = name.rsplit(".", 1)[-1]
        if owner.__dict__.get(attr) is installed:  # someone patched on top of us: leave theirs alone
            setattr(owner, attr, original)
    _saved.clear()


def _ours(span: Span) -> bool:
    """The current span is a recording span created by one of crossbridge-otel's tracers."""
    if not span.is_recording():
        return False
    scope = getattr(span, "instrumentation_scope", None)
    name = getattr(scope, "name", None) or ""
    return name.startswith(SCOPE_PREFIX)


def _area(span: Span) -> str:
    attributes: Mapping[str, Any] = getattr(span, "attributes", None) or {}
    area = attributes.get("crossbridge.area")
    return area if isinstance(area, str) and area else "crossbridge"


def _wrap_run(original: Callable[..., Any]) -> Callable[..., Any]:
    switch = SWITCH

    def run(*popenargs: Any, **kwargs: Any) -> Any:
        if not switch.on:
            return original(*popenargs, **kwargs)
        parent = _get_current_span()
        if not _ours(parent):
            return original(*popenargs, **kwargs)
        try:
            span = _start_command_span(parent, popenargs, kwargs)
            token = context_api.attach(trace_api.set_span_in_context(span))
        except Exception as exc:
            report_failure("subprocess.run span start", exc)
            return original(*popenargs, **kwargs)
        try:
            result = original(*popenargs, **kwargs)
        except BaseException as exc:
            _guarded(mark_exception, span, exc)
            raise
        else:
            _guarded(_finish_result, span, result)
            return result
        finally:
            context_api.detach(token)
            span.end()

    return run


def _start_command_span(parent: Span, popenargs: tuple[Any, ...], kwargs: dict[str, Any]) -> Span:
    area = _area(parent)
    args = popenargs[0] if popenargs else kwargs.get("args", "")
    shell = popenargs[_SHELL_POSITION] if len(popenargs) > _SHELL_POSITION else kwargs.get("shell", False)
    attributes: dict[str, Any] = {
        "crossbridge.area": area,
        "process.command_line": command_line(args),
        "crossbridge.command.shell": bool(shell),
        "code.function.name": "subprocess.run",
    }
    category = (getattr(parent, "attributes", None) or {}).get("crossbridge.category")
    if category:
        attributes["crossbridge.category"] = category
    timeout = kwargs.get("timeout")
    if isinstance(timeout, (int, float)):
        attributes["crossbridge.command.timeout_s"] = float(timeout)
    assert _tracer is not None
    return _tracer.start_span(f"{area}.command", attributes=attributes)


def _finish_result(span: Span, result: Any) -> None:
    code = getattr(result, "returncode", None)
    if not isinstance(code, int):
        return
    span.set_attribute("process.exit.code", code)
    if code != 0:
        mark_failure(span, ("nonzero_exit", _exit_description(code, getattr(result, "stderr", None))))


def _exit_description(code: int, stderr: Any) -> str:
    description = f"command exited with code {code}"
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    if isinstance(stderr, str):
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        if lines:
            description += ": " + lines[-1][-_MAX_STDERR:]
    return description


def _guarded(func: Callable[[Span, Any], None], span: Span, value: Any) -> None:
    try:
        func(span, value)
    except Exception as exc:
        report_failure(f"subprocess.run {func.__name__}", exc)


def _wrap_popen_init(original: Callable[..., Any]) -> Callable[..., Any]:
    switch = SWITCH

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if switch.on and _ours(_get_current_span()):
            try:
                args, kwargs = _with_trace_env(args, kwargs)
            except Exception as exc:
                report_failure("subprocess.Popen environment", exc)
        original(self, *args, **kwargs)

    return __init__


def _with_trace_env(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``args``/``kwargs`` with ``env`` replaced by a copy carrying the current trace context."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    if "traceparent" not in carrier:
        return args, kwargs
    positional = len(args) > _ENV_POSITION
    env = args[_ENV_POSITION] if positional else kwargs.get("env")
    new_env: dict[Any, Any] = dict(os.environ if env is None else env)
    as_bytes = any(isinstance(key, bytes) for key in new_env)
    for key in ("traceparent", "tracestate"):
        name: Any = key.upper().encode() if as_bytes else key.upper()
        value = carrier.get(key)
        if value is None:
            new_env.pop(name, None)
        else:
            new_env[name] = value.encode() if as_bytes else value
    if positional:
        return (*args[:_ENV_POSITION], new_env, *args[_ENV_POSITION + 1 :]), kwargs
    return args, {**kwargs, "env": new_env}
