"""Profiling support: CrossBridge's own error text for swallowed failures, the links that keep the
background flush thread's storage writes attached to the spans that produced their events, and the row type
for the two shapes of ``core.profiling`` the plain table cannot express (:class:`ProfilingTarget`)."""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.trace import Span, SpanContext

from crossbridge_otel._guard import report_failure
from crossbridge_otel.patching.targets import Attrs, Failure, Invoker, InvokerEnv, InvokerFactory, Target, arg
from crossbridge_otel.patching.wrapping import ORIGINAL_ATTR, SWITCH, Binding, error_type, make_wrapper
from crossbridge_otel.redaction import redact

__all__ = [
    "LINKS_ATTRIBUTE", "ProfilingTarget", "after", "building", "capturing", "contexts", "failed_false", "last_error",
    "linking", "remembering",
]

LINKS_ATTRIBUTE = "crossbridge.profiling.links"
_MAX_LINKS = 128  # the SDK's default span link limit
_MAX_LABELS = 32  # distinct labels of built callables (CrossBridge profiles 12 WebDriver commands)
_MAX_TEXT = 200


@dataclass(frozen=True)
class ProfilingTarget(Target):
    """A profiling row that also says how the raw callable is shaped (read by ``ProfilingInstrumentor._wrap``).

    ``prepare(raw)`` is what the engine wraps instead of ``raw`` (``MetricsCollector.collect`` first notes the
    span context of its event). ``builds=True`` marks a callable that *builds* the per-event callable
    (``ProfilingWebDriver._wrap_method(command, method)`` returns the function each WebDriver command runs):
    the builder itself is not traced; each callable it returns is counted under ``span`` (a span each with
    per-event spans on), labelled with ``call_attributes`` read from the *builder's* arguments.
    """

    prepare: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None
    builds: bool = False


# -- CrossBridge's own error text: the last ERROR record of its profiling loggers, per thread -----------


class _LastError(logging.Handler):
    """Keeps the last ERROR message logged on this thread; read by the outcome of the same call."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.local.message = record.getMessage()
        except Exception:  # a broken record must not break CrossBridge's logging
            self.local.message = None

    def clear(self) -> None:
        self.local.message = None

    def peek(self) -> str | None:
        """The last ERROR message since :meth:`clear` on this thread (outcomes may read it more than once)."""
        message: str | None = getattr(self.local, "message", None)
        return message


last_error = _LastError()


def failed_false(default: str) -> Callable[[Any], Failure]:
    def outcome(result: Any) -> Failure:
        if result is not False:
            return None
        return ("returned_false", last_error.peek() or default)

    return outcome


# -- which span was current when each event was collected (for links from the flush thread) ----------


class _EventContexts:
    """Bounded side table ``id(event) -> (event, span context)``; entries leave when their batch is written."""

    def __init__(self, capacity: int = 10000) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[int, tuple[Any, SpanContext]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, event: Any, context: SpanContext) -> None:
        with self._lock:
            self._entries[id(event)] = (event, context)
            if len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def take(self, events: Iterable[Any]) -> list[SpanContext]:
        """The distinct span contexts of ``events`` (forgotten afterwards), at most ``_MAX_LINKS``."""
        found: dict[tuple[int, int], SpanContext] = {}
        with self._lock:
            for event in events:
                entry = self._entries.get(id(event))
                if entry is not None and entry[0] is event:
                    del self._entries[id(event)]
                    found.setdefault((entry[1].trace_id, entry[1].span_id), entry[1])
        return list(found.values())[:_MAX_LINKS]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


contexts = _EventContexts()


def remembering(collect: Callable[..., Any]) -> Callable[..., Any]:
    """``MetricsCollector.collect`` that first notes the current span context of the event."""
    switch = SWITCH
    get_span = trace_api.get_current_span

    def wrapper(self: Any, event: Any, *args: Any, **kwargs: Any) -> Any:
        if switch.on:
            try:
                context = get_span().get_span_context()
                if context.is_valid:
                    contexts.remember(event, context)
            except Exception as exc:
                report_failure("profiling collect context", exc)
        return collect(self, event, *args, **kwargs)

    functools.update_wrapper(wrapper, collect)
    return wrapper


# -- invokers ---------------------------------------------------------------------------------------------


def _calling(inner: Invoker | None, original: Callable[..., Any], args: tuple[Any, ...],
             kwargs: dict[str, Any], span: Span) -> Any:
    return original(*args, **kwargs) if inner is None else inner(original, args, kwargs, span)


def capturing(inner: InvokerFactory | None) -> InvokerFactory:
    """Clear the captured error text before the call (then ``inner``, the retry layer, or a plain call)."""

    def factory(target: Target, env: InvokerEnv) -> Invoker:
        wrapped = inner(target, env) if inner is not None else None

        def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
            last_error.clear()
            return _calling(wrapped, original, args, kwargs, span)

        return invoke

    return factory


def linking(inner: InvokerFactory | None) -> InvokerFactory:
    """Storage writes: link the span to the spans current when its events were collected."""

    def factory(target: Target, env: InvokerEnv) -> Invoker:
        wrapped = capturing(inner)(target, env)

        def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
            try:
                links = contexts.take(arg(args, kwargs, 1, "events") or ())
                for context in links:
                    span.add_link(context)
                span.set_attribute(LINKS_ATTRIBUTE, len(links))
            except Exception as exc:
                report_failure("profiling write links", exc)
            return _calling(wrapped, original, args, kwargs, span)

        return invoke

    return factory


def after(read: Callable[[Span, tuple[Any, ...], Any], None]) -> InvokerFactory:
    """Call, then let ``read(span, args, result)`` add what only the finished call knows."""

    def factory(target: Target, env: InvokerEnv) -> Invoker:
        def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
            result = original(*args, **kwargs)
            try:
                read(span, args, result)
            except Exception as exc:
                report_failure(f"{target.span} result", exc)
            return result

        return invoke

    return factory


# -- callables CrossBridge builds per event (each WebDriver command) ----------------------------------------


def building(raw: Callable[..., Any], target: Target, binding_for: Callable[[Attrs], Binding],
             per_event: bool) -> Callable[..., Any]:
    """``raw``, a builder (see :class:`ProfilingTarget`), whose every built callable is counted or spanned.

    ``binding_for(labels)`` makes the engine's binding for one label set (the instrumentor's, so uninstrument
    turns it into a pass-through); bindings are made once per label set, at most ``_MAX_LABELS`` of them.
    """
    anchor = binding_for({})  # label-less: used past the label cap, and says whether we are still live
    built: dict[tuple[tuple[str, Any], ...], tuple[Binding, Attrs]] = {}
    switch = SWITCH
    read = target.call_attributes

    def bound(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Binding, Attrs]:
        labels = {k: v for k, v in (read(args, kwargs) if read is not None else {}).items() if v is not None}
        key = tuple(sorted(labels.items()))
        found = built.get(key)
        if found is None:
            if len(built) >= _MAX_LABELS:
                return anchor, {}
            found = built.setdefault(key, (binding_for(labels), labels))
        return found

    def build(*args: Any, **kwargs: Any) -> Any:
        made = raw(*args, **kwargs)
        if not (switch.on and anchor.live) or not callable(made):
            return made
        try:
            binding, labels = bound(args, kwargs)
            return make_wrapper(made, binding) if per_event else counting(made, binding, labels)
        except Exception as exc:
            report_failure(f"building {target.span}", exc)
            return made

    functools.update_wrapper(build, raw)
    setattr(build, ORIGINAL_ATTR, raw)
    return build


def counting(func: Callable[..., Any], binding: Binding, labels: Attrs) -> Callable[..., Any]:
    """``func`` counted on the enclosing recording span (``crossbridge.<span>.count``); an exception it raises
    is counted too (``crossbridge.<span>.errors``) and noted there as a ``<span>.error`` event, then re-raised."""
    switch = SWITCH
    get_span = trace_api.get_current_span
    count_key = binding.count_key
    errors_key = f"crossbridge.{binding.name}.errors"
    event_name = f"{binding.name}.error"

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        span = get_span()
        if not (switch.on and binding.live and span.is_recording()):
            return func(*args, **kwargs)
        try:
            _bump(span, count_key)
        except Exception as exc:
            report_failure(f"count of {binding.name}", exc)
        try:
            return func(*args, **kwargs)
        except BaseException as exc:
            try:
                _bump(span, errors_key)
                span.add_event(event_name, {**labels, "error.type": error_type(exc),
                                            "exception.message": redact(str(exc))[:_MAX_TEXT]})
            except Exception as inner:
                report_failure(f"error count of {binding.name}", inner)
            raise

    functools.update_wrapper(wrapper, func)
    setattr(wrapper, ORIGINAL_ATTR, func)
    return wrapper


def _bump(span: Span, key: str) -> None:
    attributes = getattr(span, "attributes", None) or {}
    span.set_attribute(key, int(attributes.get(key, 0)) + 1)
