"""The logger provider stand-in of :mod:`crossbridge_otel.export.lazy`, in its own module: defining it imports
``opentelemetry._logs``, which a process that never asks for an OpenTelemetry logger does not need at start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry._logs import LoggerProvider as ApiLoggerProvider

if TYPE_CHECKING:
    from crossbridge_otel.export.lazy import LazyPipeline

__all__ = ["LazyLoggerProvider"]


class LazyLoggerProvider(ApiLoggerProvider):
    def __init__(self, owner: LazyPipeline) -> None:
        self._owner = owner

    def get_logger(self, *args: Any, **kwargs: Any) -> Any:
        return self._owner.get().logger_provider.get_logger(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner.get().logger_provider, name)
