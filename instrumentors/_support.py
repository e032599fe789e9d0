"""What several areas share beyond the readers (:mod:`crossbridge_otel.patching.readers`) and the engine's
invoker types (:mod:`crossbridge_otel.patching.invokers`):

- :class:`RunsCommands`: the base of the areas whose CrossBridge code runs commands (the subprocess layer);
- :class:`TeeStdout` and :func:`printed_error`: CrossBridge's own text for calls that ``print()`` their error.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Span

from crossbridge_otel.patching import subprocesses
from crossbridge_otel.patching.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.patching.invokers import Invoker, InvokerEnv, InvokerSpec, call_next
from crossbridge_otel.patching.readers import bounded

__all__ = ["RunsCommands", "TeeStdout", "printed_error"]


class RunsCommands(CrossBridgeInstrumentor):
    """Base of the areas whose CrossBridge code runs commands: holds the subprocess layer while instrumented
    (``<area>.command`` child spans and ``TRACEPARENT`` for the child; see
    :mod:`crossbridge_otel.patching.subprocesses`)."""

    def _on_instrument(self, **kwargs: Any) -> None:
        self._subprocess_acquired = True
        subprocesses.acquire(kwargs.get("tracer_provider"), self._settings)

    def _on_uninstrument(self) -> None:
        if getattr(self, "_subprocess_acquired", False):
            self._subprocess_acquired = False
            subprocesses.release()


class _ThreadTee:
    """Stands in for ``sys.stdout`` during one call: every write goes through to the real stream unchanged;
    the lines written by the calling thread are also kept."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._thread = threading.get_ident()
        self.parts: list[str] = []

    def write(self, text: str) -> Any:
        if threading.get_ident() == self._thread and len(self.parts) < 64:
            self.parts.append(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_printed = threading.local()


@dataclass(frozen=True)
class TeeStdout(InvokerSpec):
    """For calls that ``print()`` their error instead of raising or logging it (CrossBridge's coverage.py and
    Istanbul parsers): stdout is teed for the call (every write still goes through), and :func:`printed_error`
    then gives the last ``Error...`` line this thread printed, for the row's outcome to use as the description."""

    def build(self, env: InvokerEnv, inner: Invoker | None) -> Invoker:
        proceed = call_next(inner)

        def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
            stream = sys.stdout
            tee = _ThreadTee(stream)
            sys.stdout = tee
            try:
                return proceed(original, args, kwargs, span)
            finally:
                if sys.stdout is tee:
                    sys.stdout = stream
                _printed.lines = "".join(tee.parts).splitlines()

        return invoke


def printed_error() -> str | None:
    """The last line starting with ``Error`` printed during the last :class:`TeeStdout` call on this thread."""
    lines = getattr(_printed, "lines", [])
    _printed.lines = []
    errors = [line.strip() for line in lines if line.strip().startswith("Error")]
    return bounded(errors[-1]) if errors else None
