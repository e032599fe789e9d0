"""Global providers that build the SDK pipeline on first use.

``opentelemetry-instrument`` runs the configurator in every process it starts, including ones that never
trace anything (``python -c pass``, helper scripts, a CrossBridge command that exits on ``--help``).
Importing the SDK and building providers costs tens of milliseconds, so the configurator installs these
light stand-ins instead: the first ``get_tracer``, ``get_meter`` or ``get_logger`` call (or any other
attribute, such as ``add_span_processor``) builds the whole pipeline once, for all three signals, and
from then on every call goes to the real SDK provider.

The meter and logger stand-ins are made when first asked for: the configurator hands them to
``opentelemetry.metrics`` / ``opentelemetry._logs`` right after those modules are first imported (a post-import
hook), so a process that never imports them does not pay for importing them (a few milliseconds at each start-up)
and one that does has them installed before its first ``get_meter``/``get_logger``.

Once the pipeline has shut down (the exit flush), ``get_meter`` hands out no-op meters: an instrumentation loaded
that late (the contrib requests instrumentation is loaded when the metric exporter first imports requests, at
exit) would otherwise make the SDK warn "A shutdown `MeterProvider` can not provide a `Meter`".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import TracerProvider as ApiTracerProvider

__all__ = ["LazyPipeline"]


class LazyPipeline:
    """Builds the pipeline once, on the first request from any of its three providers."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._pipeline: Any = None
        self.tracer_provider = _LazyTracerProvider(self)
        # not self._lock: a stand-in is first asked for while the pipeline is being built (the SDK imports the API)
        self._stand_in_lock = threading.Lock()
        self._meter_provider: Any = None
        self._logger_provider: Any = None

    @property
    def meter_provider(self) -> Any:
        """The meter provider stand-in, made the first time it is asked for."""
        if self._meter_provider is None:
            # The API first: its import may run the configurator's hook, which asks for this same stand-in; the
            # stand-in's module must never be imported while the API module is half-way through its own import.
            import opentelemetry.metrics  # noqa: F401

            from crossbridge_otel.export._lazy_meter import LazyMeterProvider

            with self._stand_in_lock:
                if self._meter_provider is None:
                    self._meter_provider = LazyMeterProvider(self)
        return self._meter_provider

    @property
    def logger_provider(self) -> Any:
        """The logger provider stand-in, made the first time it is asked for (as :attr:`meter_provider`)."""
        if self._logger_provider is None:
            import opentelemetry._logs  # noqa: F401

            from crossbridge_otel.export._lazy_logger import LazyLoggerProvider

            with self._stand_in_lock:
                if self._logger_provider is None:
                    self._logger_provider = LazyLoggerProvider(self)
        return self._logger_provider

    @property
    def built(self) -> Any:
        """The pipeline if it was built, else None (never builds)."""
        return self._pipeline

    def get(self) -> Any:
        pipeline = self._pipeline
        if pipeline is None:
            with self._lock:
                if self._pipeline is None:
                    self._pipeline = self._build()
                pipeline = self._pipeline
        return pipeline


class _LazyTracerProvider(ApiTracerProvider):
    def __init__(self, owner: LazyPipeline) -> None:
        self._owner = owner

    def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
        return self._owner.get().tracer_provider.get_tracer(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner.get().tracer_provider, name)
