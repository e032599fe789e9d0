"""Global providers that build the SDK pipeline on first use.

``opentelemetry-instrument`` runs the configurator in every process it starts, including ones that never
trace anything (``python -c pass``, helper scripts, a CrossBridge command that exits on ``--help``).
Importing the SDK and building providers costs tens of milliseconds, so the configurator installs these
light stand-ins instead: the first ``get_tracer``, ``get_meter`` or ``get_logger`` call (or any other
attribute, such as ``add_span_processor``) builds the whole pipeline once, for all three signals, and
from then on every call goes to the real SDK provider.

Once the pipeline has shut down (the exit flush), ``get_meter`` hands out no-op meters: an instrumentation loaded
that late (the contrib requests instrumentation is loaded when the metric exporter first imports requests, at
exit) would otherwise make the SDK warn "A shutdown `MeterProvider` can not provide a `Meter`".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from opentelemetry._logs import LoggerProvider as ApiLoggerProvider
from opentelemetry.metrics import MeterProvider as ApiMeterProvider
from opentelemetry.metrics import NoOpMeter
from opentelemetry.trace import TracerProvider as ApiTracerProvider

__all__ = ["LazyPipeline"]


class LazyPipeline:
    """Builds the pipeline once, on the first request from any of its three providers."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._pipeline: Any = None
        self.tracer_provider = _LazyTracerProvider(self)
        self.meter_provider = _LazyMeterProvider(self)
        self.logger_provider = _LazyLoggerProvider(self)

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


class _LazyMeterProvider(ApiMeterProvider):
    def __init__(self, owner: LazyPipeline) -> None:
        self._owner = owner

    def get_meter(self, name: str, *args: Any, **kwargs: Any) -> Any:
        pipeline = self._owner.get()
        if getattr(pipeline, "closed", False):
            return NoOpMeter(name)
        return pipeline.meter_provider.get_meter(name, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner.get().meter_provider, name)


class _LazyLoggerProvider(ApiLoggerProvider):
    def __init__(self, owner: LazyPipeline) -> None:
        self._owner = owner

    def get_logger(self, *args: Any, **kwargs: Any) -> Any:
        return self._owner.get().logger_provider.get_logger(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner.get().logger_provider, name)
