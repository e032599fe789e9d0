"""Profiling support: CrossBridge's own error text for swallowed failures (:data:`last_error`, cleared before each
call by :data:`CAPTURE`), the links that keep the background flush thread's storage writes attached to the spans
that produced their events (:data:`LINK_EVENTS`), and the row type for the shapes of ``core.profiling`` the plain
table cannot express (:class:`ProfilingTarget`)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.trace import Span, SpanContext

from crossbridge_otel._guard import report_failure
from crossbridge_otel.patching.invokers import BeforeCall
from crossbridge_otel.patching.readers import arg, bounded
from crossbridge_otel.patching.targets import Attrs, Engine, Target
from crossbridge_otel.patching.wrapping import SWITCH, Binding, bump, error_type, make_wrapper, stands_for

__all__ = ["CAPTURE", "LINKS_ATTRIBUTE", "LINK_EVENTS", "ProfilingTarget", "contexts", "last_error", "remembering"]

LINKS_ATTRIBUTE = "crossbridge.profiling.links"
_MAX_LINKS = 128  # the SDK's default span link limit
_MAX_LABELS = 32  # distinct labels of built callables (CrossBridge profiles 12 WebDriver commands)
_MAX_TEXT = 200


@dataclass(frozen=True)
class ProfilingTarget(Target):
    """A profiling row that also says how the raw callable is shaped.

    ``prepare(raw)`` is what the engine wraps instead of ``raw`` (``MetricsCollector.collect`` first notes the
    span context of its event). ``builds=True`` marks a callable that *builds* the per-event callable
    (``ProfilingWebDriver._wrap_method(command, method)`` returns the function each WebDriver command runs):
    the builder itself is not traced; each callable it returns is counted under ``span`` (a span each with
    per-event spans on), labelled with ``call_attributes`` read from the *builder's* arguments. ``block=True``
    marks a ``@contextmanager`` function (``context.profile``): the span covers the ``with`` block, not the
    creation of the context manager.
    """

    prepare: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None
    builds: bool = False
    block: bool = False

    def wrap(self, raw: Any, engine: Engine) -> Any:
        if not callable(raw):
            return engine.wrapper(raw, self)
        if self.builds:
            per_event = self.mode != "count" or engine.settings.per_event_spans
            return _building(raw, self, functools.partial(_labelled, engine, self), per_event)
        if self.prepare is not None:
            return engine.wrapper(self.prepare(raw), self)
        inner = getattr(raw, "__wrapped__", None)
        if self.block and inspect.isgeneratorfunction(inner):
            return contextlib.contextmanager(engine.wrapper(inner, self))
        return engine.wrapper(raw, self)


def _labelled(engine: Engine, target: Target, labels: Attrs) -> Binding:
    """The engine's binding for ``target`` with fixed labels (uninstrument makes it a pass-through)."""
    return engine.binding(dataclasses.replace(target, call_attributes=lambda args, kwargs: labels))


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


# Before a call whose swallowed failure CrossBridge logs: forget the last ERROR text of this thread.
CAPTURE = BeforeCall(lambda span, args, kwargs: last_error.clear())


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


def _link_events(span: Span, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    links = contexts.take(arg(args, kwargs, 1, "events") or ())
    for context in links:
        span.add_link(context)
    span.set_attribute(LINKS_ATTRIBUTE, len(links))


# Storage writes: link the span to the spans current when its events were collected.
LINK_EVENTS = BeforeCall(_link_events)


# -- callables CrossBridge builds per event (each WebDriver command) ----------------------------------------


def _building(raw: Callable[..., Any], target: Target, binding_for: Callable[[Attrs], Binding],
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
            return make_wrapper(made, binding) if per_event else _counting(made, binding, labels)
        except Exception as exc:
            report_failure(f"building {target.span}", exc)
            return made

    return stands_for(build, raw)


def _counting(func: Callable[..., Any], binding: Binding, labels: Attrs) -> Callable[..., Any]:
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
            bump(span, count_key)
        except Exception as exc:
            report_failure(f"count of {binding.name}", exc)
        try:
            return func(*args, **kwargs)
        except BaseException as exc:
            try:
                bump(span, errors_key)
                span.add_event(event_name, {**labels, "error.type": error_type(exc),
                                            "exception.message": bounded(str(exc), _MAX_TEXT) or ""})
            except Exception as inner:
                report_failure(f"error count of {binding.name}", inner)
            raise

    return stands_for(wrapper, func)
