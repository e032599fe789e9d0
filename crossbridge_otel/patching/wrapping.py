"""The wrappers put in place of CrossBridge's callables.

The per-call path is written like a benchmark: everything that can be decided at patch time lives in a
:class:`Binding` (tracer, static attributes, histogram attribute sets), and the call itself does, in order:

1. runtime switch off → call through (one attribute read);
2. parent span sampled out → call through (no span, no metric);
3. otherwise start a span, make it current, call, read the outcome, end it, record the duration.

The wrapped call returns the original's value and raises the original's exception object. Any failure in
the instrumentation part is contained by :func:`crossbridge_otel._guard.report_failure` and the call goes
ahead untouched. Per-call code (these wrappers, and the per-call functions invokers and row types build for
generic or high-frequency rows) writes that guard out by hand (``try`` / ``except Exception`` /
``report_failure``) where code elsewhere uses :func:`~crossbridge_otel._guard.contained` or
:func:`~crossbridge_otel._guard.guarded`: there a context manager costs about a microsecond per call, and the
decorator's ``*args, **kwargs`` hand-over about 80 ns, against nothing for a ``try`` that does not raise.

Wrappers keep ``__name__``, ``__qualname__``, ``__doc__``, ``__wrapped__`` (so ``inspect.signature`` is the
original's), and plain functions stay plain functions, so binding as instance, class or static methods is
unchanged; generator and coroutine functions stay so.
"""

from __future__ import annotations

import functools
import inspect
import time
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.metrics import Histogram
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
)
from opentelemetry.trace.propagation import _SPAN_KEY

from crossbridge_otel._guard import report_failure
from crossbridge_otel.patching.invokers import Invoker
from crossbridge_otel.patching.targets import Attrs, Failure
from crossbridge_otel.redaction import redact

__all__ = [
    "SWITCH",
    "Binding",
    "bump",
    "error_type",
    "exception_attributes",
    "make_wrapper",
    "mark_exception",
    "mark_failure",
    "stands_for",
]

ORIGINAL_ATTR = "__crossbridge_otel_original__"

_perf = time.perf_counter
_attach = context_api.attach
_detach = context_api.detach
_get_current_span = trace_api.get_current_span
_set_span_in_context = trace_api.set_span_in_context


def _context_reader() -> Callable[[], Any]:
    """The cheapest reader of the current context: the runtime context's own ``ContextVar.get`` when it is the
    stock contextvars runtime (it is loaded once, at the API's import), else the API's ``get_current``.
    ``get_current_span()`` costs four Python calls and an ABC ``isinstance`` on top of that one C call."""
    runtime = getattr(context_api, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    if type(runtime) is ContextVarsRuntimeContext and type(var) is ContextVar:
        return var.get
    return context_api.get_current


_current_context = _context_reader()
_SPAN_TYPES: set[type] = {NonRecordingSpan}  # classes known to be Spans (learnt on first sight: no ABC check)


def _span_context_of(span: object) -> SpanContext:
    """What ``get_current_span()`` would give for ``span`` (not None) found in the context: its span context if it
    is a Span (its class then joins :data:`_SPAN_TYPES`), else the invalid span's."""
    if isinstance(span, Span):
        _SPAN_TYPES.add(type(span))
        return span.get_span_context()
    return INVALID_SPAN_CONTEXT


class _Switch:
    """The runtime switch: ``SWITCH.on = False`` makes every wrapper a plain pass-through."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = True


SWITCH = _Switch()


def error_type(exc: BaseException) -> str:
    """``error.type`` for an exception: its fully qualified class name (builtins unqualified)."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def clean_exit(exc: BaseException) -> bool:
    """True for an exception that ends a program successfully: ``SystemExit`` with code 0 or ``None``, and a
    click/Typer ``Exit`` with ``exit_code`` 0 (how a Typer command says "done")."""
    if isinstance(exc, SystemExit):
        return exc.code in (0, None)
    return type(exc).__name__ == "Exit" and getattr(exc, "exit_code", None) == 0


def exception_attributes(exc: BaseException) -> dict[str, str]:
    """The ``exception`` event's message and stack trace, both redacted: the SDK's own stack trace ends with the raw
    message (a server's echo of a DSN password, say), so every ``record_exception`` of ours passes both."""
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"exception.message": redact(str(exc)), "exception.stacktrace": redact(stack)}


def mark_exception(span: Span, exc: BaseException) -> None:
    """Record ``exc`` on ``span`` (redacted message and stack), status ERROR, ``error.type``."""
    attributes = exception_attributes(exc)
    span.record_exception(exc, attributes=attributes)
    span.set_attribute("error.type", error_type(exc))
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {attributes['exception.message']}"))


def mark_failure(span: Span, failure: tuple[str, str]) -> None:
    """Status ERROR for a failure CrossBridge swallowed, with its short ``error.type`` and own text."""
    kind, description = failure
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, redact(description) or kind))


class Binding:
    """Everything a wrapper needs, decided once at patch time."""

    __slots__ = (
        "call_attributes", "count_key", "histogram", "invoker", "kind", "live", "metric_error", "metric_failed",
        "metric_ok", "name", "outcome", "result_attributes", "static", "tracer",
    )

    def __init__(
        self,
        *,
        name: str,
        tracer: Tracer,
        histogram: Histogram | None,
        static: Attrs,
        area: str,
        kind: SpanKind = SpanKind.INTERNAL,
        call_attributes: Callable[[tuple[Any, ...], dict[str, Any]], Attrs] | None = None,
        result_attributes: Callable[[Any], Attrs] | None = None,
        outcome: Callable[[Any], Failure] | None = None,
        invoker: Invoker | None = None,
    ) -> None:
        self.name = name
        self.tracer = tracer
        self.histogram = histogram
        self.static = dict(static)
        self.kind = kind
        self.call_attributes = call_attributes
        self.result_attributes = result_attributes
        self.outcome = outcome
        self.invoker = invoker
        # False once the instrumentor is uninstrumented: a wrapper still referenced somewhere (bound before
        # uninstrument, kept in a registry) then calls straight through.
        self.live = True
        self.count_key = f"crossbridge.{name}.count"
        base = {"area": area, "operation": name}
        self.metric_ok = {**base, "outcome": "ok"}
        self.metric_error = {**base, "outcome": "error"}
        self.metric_failed = {**base, "outcome": "failed"}

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Span:
        attributes = self.static
        if self.call_attributes is not None:
            try:
                attributes = {**attributes, **_clean(self.call_attributes(args, kwargs))}
            except Exception as exc:
                report_failure(f"attributes of {self.name}", exc)
        return self.tracer.start_span(self.name, kind=self.kind, attributes=attributes)

    def finish_result(self, span: Span, result: Any) -> dict[str, str]:
        """Read attributes and the outcome from ``result``; returns the metric attributes."""
        metric = self.metric_ok
        try:
            if self.result_attributes is not None:
                span.set_attributes(_clean(self.result_attributes(result)))
            if self.outcome is not None:
                failure = self.outcome(result)
                if failure is not None:
                    mark_failure(span, failure)
                    metric = self.metric_failed
        except Exception as exc:
            report_failure(f"outcome of {self.name}", exc)
        return metric

    def finish_exception(self, span: Span, exc: BaseException) -> dict[str, str]:
        try:
            if clean_exit(exc):
                return self.metric_ok
            mark_exception(span, exc)
        except Exception as inner:
            report_failure(f"exception of {self.name}", inner)
        return self.metric_error

    def end(self, span: Span, started: float, metric: dict[str, str]) -> None:
        try:
            span.end()
            if self.histogram is not None:
                self.histogram.record(_perf() - started, metric)
        except Exception as exc:
            report_failure(f"end of {self.name}", exc)


_PLAIN = frozenset({str, bool, int, float})
_MAX_TEXT = 256  # characters kept of a value that had to be turned into text


def _clean(attributes: Attrs) -> dict[str, Any]:
    """An extractor's output as valid OTel attribute values: None dropped, anything else not plain made plain.

    CrossBridge hands our readers what it was given: a numpy scalar, bytes, a recursive list. The SDK would refuse
    those (and a recursive list costs the whole span), so they become their plain value or bounded text.
    """
    cleaned = {}
    for key, value in attributes.items():
        if value is None:
            continue
        cleaned[key] = value if type(value) in _PLAIN else _plain(value)
    return cleaned


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        if value and all(type(item) in _PLAIN for item in value) and len({type(item) for item in value}) == 1:
            return value
        return redact(_text(value))
    item = getattr(value, "item", None)  # numpy (and similar) scalars
    if callable(item):
        try:
            plain = item()
        except Exception:
            plain = None
        if type(plain) in _PLAIN:
            return plain
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return redact(_text(value))


def _text(value: Any) -> str:
    try:
        text = str(value)
    except Exception as exc:  # a __str__ that raises is CrossBridge's object's problem, not a reason to lose the span
        text = f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _sampled_out() -> bool:
    """The parent's trace was sampled out. Read from the sampled flag, not ``is_recording()``: a parent
    that has already ended (the span that started CrossBridge's flush thread) no longer records, but its
    trace is sampled and work done on its behalf belongs in it."""
    span = _current_context().get(_SPAN_KEY)
    if span is None:  # get_current_span() would give the invalid span: not sampled out
        return False
    parent = span.get_span_context() if type(span) in _SPAN_TYPES else _span_context_of(span)
    return not parent.trace_flags.sampled and parent.is_valid


def make_wrapper(original: Callable[..., Any], binding: Binding) -> Callable[..., Any]:
    """A wrapper of the right flavour (plain, generator, coroutine) for ``original``."""
    if inspect.isasyncgenfunction(original):
        wrapper = _async_generator_wrapper(original, binding)
    elif inspect.iscoroutinefunction(original):
        wrapper = _coroutine_wrapper(original, binding)
    elif inspect.isgeneratorfunction(original):
        wrapper = _generator_wrapper(original, binding)
    else:
        wrapper = _plain_wrapper(original, binding)
    return stands_for(wrapper, original)


def stands_for(wrapper: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    """``wrapper`` made to stand for ``original``: its name, docstring and ``__wrapped__`` (so its signature), and
    the marker that tells uninstrument and a second instrument what it replaced."""
    functools.update_wrapper(wrapper, original)
    setattr(wrapper, ORIGINAL_ATTR, original)
    return wrapper


def _plain_wrapper(original: Callable[..., Any], b: Binding) -> Callable[..., Any]:
    switch = SWITCH
    invoker = b.invoker

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not switch.on or not b.live:
            return original(*args, **kwargs)
        span = _current_context().get(_SPAN_KEY)  # _sampled_out() inlined: this is the hottest path
        if span is not None:
            parent = span.get_span_context() if type(span) in _SPAN_TYPES else _span_context_of(span)
            if not parent.trace_flags.sampled and parent.is_valid:
                return original(*args, **kwargs)
        started = _perf()
        try:
            span = b.start(args, kwargs)
            token = _attach(_set_span_in_context(span))
        except Exception as exc:
            report_failure(f"span start of {b.name}", exc)
            return original(*args, **kwargs)
        metric = b.metric_error
        try:
            if invoker is None:  # noqa: SIM108 (two plain calls read faster than a conditional expression here)
                result = original(*args, **kwargs)
            else:
                result = invoker(original, args, kwargs, span)
        except BaseException as exc:
            metric = b.finish_exception(span, exc)
            raise
        else:
            metric = b.finish_result(span, result)
            return result
        finally:
            _detach(token)
            b.end(span, started, metric)

    return wrapper


def _begin(b: Binding, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Span | None:
    """Start the span for a generator or coroutine call; None (call goes ahead untraced) if that fails."""
    try:
        return b.start(args, kwargs)
    except Exception as exc:
        report_failure(f"span start of {b.name}", exc)
        return None


def _coroutine_wrapper(original: Callable[..., Any], b: Binding) -> Callable[..., Any]:
    switch = SWITCH

    invoker = b.invoker

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not switch.on or not b.live or _sampled_out():
            return await original(*args, **kwargs)
        started = _perf()
        span = _begin(b, args, kwargs)
        if span is None:
            return await original(*args, **kwargs)
        token = _attach(_set_span_in_context(span))
        metric = b.metric_error
        try:
            if invoker is None:
                result = await original(*args, **kwargs)
            else:  # an invoker of a coroutine function returns an awaitable (or the result itself)
                result = invoker(original, args, kwargs, span)
                if inspect.isawaitable(result):
                    result = await result
        except BaseException as exc:
            metric = b.finish_exception(span, exc)
            raise
        else:
            metric = b.finish_result(span, result)
            return result
        finally:
            _detach(token)
            b.end(span, started, metric)

    return wrapper


def _generator_wrapper(original: Callable[..., Any], b: Binding) -> Callable[..., Any]:
    """The span covers the whole iteration and is current only while the generator's own code runs."""
    switch = SWITCH

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not switch.on or not b.live or _sampled_out():
            return (yield from original(*args, **kwargs))
        started = _perf()
        span = _begin(b, args, kwargs)
        if span is None:
            return (yield from original(*args, **kwargs))
        ctx = _set_span_in_context(span)
        metric = b.metric_error
        gen = original(*args, **kwargs)
        try:
            to_send: Any = None
            to_throw: BaseException | None = None
            while True:
                token = _attach(ctx)
                try:
                    value = gen.send(to_send) if to_throw is None else gen.throw(to_throw)
                except StopIteration as stop:
                    metric = b.finish_result(span, stop.value)
                    return stop.value
                except GeneratorExit:
                    metric = b.metric_ok
                    raise
                except BaseException as exc:
                    metric = b.finish_exception(span, exc)
                    raise
                finally:
                    _detach(token)
                to_send, to_throw = None, None
                try:
                    to_send = yield value
                except GeneratorExit:
                    gen.close()
                    metric = b.metric_ok
                    raise
                except BaseException as exc:
                    to_throw = exc
        finally:
            b.end(span, started, metric)

    return wrapper


def _async_generator_wrapper(original: Callable[..., Any], b: Binding) -> Callable[..., Any]:
    """Async generators: the span covers the whole iteration and is current only while the original's own
    code runs; ``asend``, ``athrow`` and ``aclose`` reach the original."""
    switch = SWITCH

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        span = None
        started = _perf()
        if switch.on and b.live and not _sampled_out():
            span = _begin(b, args, kwargs)
        ctx = _set_span_in_context(span) if span is not None else None
        metric = b.metric_error
        agen = original(*args, **kwargs)
        try:
            to_send: Any = None
            to_throw: BaseException | None = None
            while True:
                token = _attach(ctx) if ctx is not None else None
                try:
                    value = await (agen.asend(to_send) if to_throw is None else agen.athrow(to_throw))
                except StopAsyncIteration:
                    metric = b.metric_ok
                    return
                except GeneratorExit:
                    metric = b.metric_ok
                    raise
                except BaseException as exc:
                    if span is not None:
                        metric = b.finish_exception(span, exc)
                    raise
                finally:
                    if token is not None:
                        _detach(token)
                to_send, to_throw = None, None
                try:
                    to_send = yield value
                except GeneratorExit:
                    await agen.aclose()
                    metric = b.metric_ok
                    raise
                except BaseException as exc:
                    to_throw = exc
        finally:
            if span is not None:
                b.end(span, started, metric)

    return wrapper


def bump(span: Span, key: str) -> None:
    """Add one to the integer attribute ``key`` of ``span`` (a count kept on the enclosing span)."""
    attributes = getattr(span, "attributes", None) or {}
    span.set_attribute(key, int(attributes.get(key, 0)) + 1)


def make_counter(original: Callable[..., Any], binding: Binding) -> Callable[..., Any]:
    """High-frequency path: count the call on the enclosing recording span instead of opening one."""
    switch = SWITCH
    key = binding.count_key

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if switch.on and binding.live:
            span = _get_current_span()
            if span.is_recording():
                try:
                    attributes = getattr(span, "attributes", None) or {}
                    span.set_attribute(key, int(attributes.get(key, 0)) + 1)
                except Exception as exc:
                    report_failure(f"count of {binding.name}", exc)
        return original(*args, **kwargs)

    return stands_for(wrapper, original)
