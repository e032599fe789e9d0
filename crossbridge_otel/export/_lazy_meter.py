"""The meter provider stand-in of :mod:`crossbridge_otel.export.lazy`, in its own module: defining it imports
``opentelemetry.metrics``, which a process that never asks for a meter does not need at start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import MeterProvider as ApiMeterProvider
from opentelemetry.metrics import NoOpMeter

if TYPE_CHECKING:
    from crossbridge_otel.export.lazy import LazyPipeline

__all__ = ["LazyMeterProvider"]


class LazyMeterProvider(ApiMeterProvider):
    def __init__(self, owner: LazyPipeline) -> None:
        self._owner = owner

    def get_meter(self, name: str, *args: Any, **kwargs: Any) -> Any:
        pipeline = self._owner.get()
        if getattr(pipeline, "closed", False):
            return NoOpMeter(name)
        return pipeline.meter_provider.get_meter(name, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner.get().meter_provider, name)
