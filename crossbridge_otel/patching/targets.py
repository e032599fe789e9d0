"""What an instrumentor declares: a table of :class:`Target` rows, plus small helpers to write them.

A target names a callable by module and qualified attribute, the low-cardinality span name, how to read
attributes from the call and the result, and how to read CrossBridge's swallowed failures from the return
value. The same table drives instrument, uninstrument and the doctor report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.metrics import Meter
from opentelemetry.trace import Span, SpanKind

__all__ = [
    "Attrs",
    "Failure",
    "Invoker",
    "InvokerEnv",
    "InvokerFactory",
    "Target",
    "arg",
    "failed_if_empty",
    "failed_if_false",
    "failed_if_none",
    "size",
]

Attrs = Mapping[str, Any]
# (error.type, description) for a failure CrossBridge swallowed; None when the call succeeded.
Failure = tuple[str, str] | None
# Replaces the plain call: invoker(original, args, kwargs, span) -> result. The retry layer is one.
Invoker = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any], Span], Any]


@dataclass(frozen=True)
class InvokerEnv:
    """What the instrumentor hands an invoker factory at patch time.

    ``settings`` are the instrumentor's effective settings, ``meter`` its meter (injected provider), and
    ``start_attributes`` the span's static attributes, which the factory may extend (set once at span start,
    free on the call path).
    """

    area: str
    settings: Any
    meter: Meter
    start_attributes: dict[str, Any]


# Target.invoker: factory(target, env) -> the invoker, or None for a plain call (e.g. retries switched off).
InvokerFactory = Callable[["Target", InvokerEnv], "Invoker | None"]


@dataclass(frozen=True)
class Target:
    """One callable to wrap.

    ``call_attributes(args, kwargs)`` reads attributes at the start (``args[0]`` is ``self`` for methods);
    ``result_attributes(result)`` reads them from the return value; ``outcome(result)`` returns a
    :data:`Failure` for a swallowed failure. ``mode="count"`` marks a high-frequency path: it is counted
    on the enclosing span (``crossbridge.<span>.count``) unless per-event spans are switched on.
    """

    module: str
    qualname: str
    span: str
    call_attributes: Callable[[tuple[Any, ...], dict[str, Any]], Attrs] | None = None
    result_attributes: Callable[[Any], Attrs] | None = None
    outcome: Callable[[Any], Failure] | None = None
    category: str | None = None
    kind: SpanKind = SpanKind.INTERNAL
    mode: str = "span"
    invoker: InvokerFactory | None = None

    @property
    def function_name(self) -> str:
        """``code.function.name``: the fully qualified name of the wrapped callable."""
        return f"{self.module}.{self.qualname}"


_MISSING = object()


def arg(args: Sequence[Any], kwargs: Mapping[str, Any], index: int, name: str, default: Any = None) -> Any:
    """The argument passed by position ``index`` (counting ``self``) or by keyword ``name``."""
    if len(args) > index:
        return args[index]
    value = kwargs.get(name, _MISSING)
    return default if value is _MISSING else value


def size(value: Any) -> int | None:
    """``len(value)`` when it has one, else None: counts, never contents, become attributes."""
    try:
        return len(value)
    except TypeError:
        return None


def failed_if_false(error_type: str = "returned_false", description: str = "") -> Callable[[Any], Failure]:
    """Outcome for CrossBridge calls that swallow errors into a ``False`` return."""

    def outcome(result: Any) -> Failure:
        return (error_type, description) if result is False else None

    return outcome


def failed_if_none(error_type: str = "returned_none", description: str = "") -> Callable[[Any], Failure]:
    """Outcome for calls that print an error and return ``None``."""

    def outcome(result: Any) -> Failure:
        return (error_type, description) if result is None else None

    return outcome


def failed_if_empty(error_type: str = "returned_empty", description: str = "") -> Callable[[Any], Failure]:
    """Outcome for calls that return ``None`` or an empty collection on failure."""

    def outcome(result: Any) -> Failure:
        return (error_type, description) if not result else None

    return outcome
