"""What an instrumentor declares: a table of :class:`Target` rows.

A row names a callable by module and qualified attribute, the low-cardinality span name, how to read attributes
from the call and the result, how to read CrossBridge's swallowed failures from the return value, and the
invokers the call goes through (:mod:`crossbridge_otel.patching.invokers`: a retry with its policy, a rate limit
with its key, a reader after the call, an observed CrossBridge retry loop), all as data. The same table drives
instrument, uninstrument, the doctor report and the audit. The readers rows use are in
:mod:`crossbridge_otel.patching.readers`.

A row type with a shape the plain span wrapper cannot express (a callable that builds the per-event callables,
a status update that switches child spans) overrides :meth:`Target.wrap`, a public hook of the row: the engine
hands it an :class:`Engine` to build the standard wrapper or a binding from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry.trace import SpanKind

from crossbridge_otel.patching.invokers import InvokerSpec

if TYPE_CHECKING:
    from crossbridge_otel.patching.wrapping import Binding

__all__ = ["Attrs", "Engine", "Failure", "Target"]

Attrs = Mapping[str, Any]
# (error.type, description) for a failure CrossBridge swallowed; None when the call succeeded.
Failure = tuple[str, str] | None


class Engine(Protocol):
    """What the engine offers a row's :meth:`Target.wrap` at patch time."""

    @property
    def settings(self) -> Any:
        """The instrumentor's effective settings."""

    def wrapper(self, raw: Any, target: Target) -> Any:
        """The engine's standard replacement of ``raw`` for ``target`` (a span, or a count with ``mode="count"``)."""

    def binding(self, target: Target) -> Binding:
        """The engine's per-target binding (tracer, static attributes, histogram; uninstrument disables it)."""


@dataclass(frozen=True)
class Target:
    """One callable to wrap.

    ``call_attributes(args, kwargs)`` reads attributes at the start (``args[0]`` is ``self`` for methods);
    ``result_attributes(result)`` reads them from the return value; ``outcome(result)`` returns a
    :data:`Failure` for a swallowed failure. ``invokers`` are what the call goes through, outermost first (see
    :mod:`crossbridge_otel.patching.invokers`). ``mode="count"`` marks a high-frequency path: it is counted on
    the enclosing span (``crossbridge.<span>.count``) unless per-event spans are switched on.
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
    invokers: tuple[InvokerSpec, ...] = ()

    def __post_init__(self) -> None:
        for spec in self.invokers[:-1]:
            if spec.innermost:
                raise TypeError(f"{self.function_name}: {type(spec).__name__} calls the original itself; "
                                "it must be the last of the row's invokers")

    @property
    def function_name(self) -> str:
        """``code.function.name``: the fully qualified name of the wrapped callable."""
        return f"{self.module}.{self.qualname}"

    def wrap(self, raw: Any, engine: Engine) -> Any:
        """What the engine installs in place of ``raw`` (the raw attribute, descriptors unbound): by default its
        standard wrapper. Row types with another shape override this."""
        return engine.wrapper(raw, self)
