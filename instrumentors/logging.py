"""Logging instrumentation: every CrossBridge log record exported once as an OpenTelemetry log record.

Enabled under ``opentelemetry-instrument`` as ``crossbridge_logging``,
its name in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` (switch it off with
``CROSSBRIDGE_OTEL_LOGS=false``); in code::

    from crossbridge_otel.instrumentors.logging import LoggingInstrumentor
    LoggingInstrumentor().instrument(logger_provider=...)

What is exported (the bridge is :mod:`crossbridge_otel.logs.bridge`, the record mapping
:mod:`crossbridge_otel.logs.handler`):

==========================================  =====================================================
records of                                  exported with
==========================================  =====================================================
``CrossBridgeLogger`` (``get_logger``),     ``crossbridge.category`` = the wrapper's category;
already created or created later            its folded ``**kwargs`` / ``extra=`` / context as
                                            ``crossbridge.log.<key>``; the caller's location
plain loggers under ``core``, ``adapters``, ``crossbridge.category`` of the module;
``services``                                ``extra=`` fields as ``crossbridge.log.<key>``
==========================================  =====================================================

Every record also has ``crossbridge.logger.name`` (and the logger name as instrumentation scope),
``code.file.path`` / ``code.function.name`` / ``code.line.number``, severity (TRACE→TRACE,
SUCCESS→INFO2 "SUCCESS", others as the SDK maps them), and the active trace and span ids. Levels are never
lowered and no handler is added to the root logger. This instrumentor creates no spans.
"""

from __future__ import annotations

from typing import Any

from crossbridge_otel.logs.bridge import LOGGER_MODULE, PACKAGES, LogBridge
from crossbridge_otel.patching import status
from crossbridge_otel.patching.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.patching.status import State

__all__ = ["LoggingInstrumentor"]

_INIT = "CrossBridgeLogger.__init__"
_PACKAGES = "logging handlers on " + ", ".join(PACKAGES)


class LoggingInstrumentor(CrossBridgeInstrumentor):
    """Installs the log bridge with the injected (or global) logger provider."""

    area = "logging"
    category = "general"

    def _on_instrument(self, **kwargs: Any) -> None:
        if not self._settings.logs:
            self._report(_INIT, State.DISABLED, "CROSSBRIDGE_OTEL_LOGS=false")
            return
        self._report(_INIT, State.WAITING)
        self._bridge: LogBridge | None = LogBridge(kwargs.get("logger_provider"), on_hooked=self._hooked)
        self._bridge.install()
        self._report(_PACKAGES, State.PATCHED, "package loggers bridged; root logger untouched")

    def _hooked(self, existing: int) -> None:
        self._report(_INIT, State.PATCHED, f"future loggers bridged; {existing} existing logger(s) bridged")

    def _on_uninstrument(self) -> None:
        bridge = getattr(self, "_bridge", None)
        if bridge is not None:
            bridge.uninstall()
            self._bridge = None
            self._report(_INIT, State.REMOVED)
            self._report(_PACKAGES, State.REMOVED)

    def _report(self, what: str, state: State, detail: str = "") -> None:
        module = LOGGER_MODULE if what == _INIT else "logging"
        status.record(self.area, module, what, "", state, detail)
