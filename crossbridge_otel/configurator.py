"""The configurator ``opentelemetry-instrument`` loads: providers, exporters and the resource.

All the work is in :func:`crossbridge_otel.pipeline.configure`; this is the entry-point glue. With
``CROSSBRIDGE_OTEL_ENABLED=false`` it builds nothing.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk._configuration import _BaseConfigurator

from crossbridge_otel._guard import report_failure
from crossbridge_otel.settings import load as load_settings

__all__ = ["CrossBridgeConfigurator", "active_pipeline"]

_active: list[Any] = []


def active_pipeline() -> Any:
    """The pipeline this process's configurator built, or None."""
    return _active[0] if _active else None


class CrossBridgeConfigurator(_BaseConfigurator):
    """Builds the providers through :mod:`crossbridge_otel.pipeline`."""

    def _configure(self, **kwargs: Any) -> None:
        try:
            settings = load_settings()
            if not settings.enabled:
                return
            from crossbridge_otel.pipeline import configure

            _active.append(configure(settings))
        except Exception as exc:
            report_failure("configurator", exc)
