"""The configurator ``opentelemetry-instrument`` loads: providers, exporters and the resource.

All the work is in :func:`crossbridge_otel.pipeline.configure`; this is the entry-point glue. With
``CROSSBRIDGE_OTEL_ENABLED=false`` it builds nothing.
"""

from __future__ import annotations

from typing import Any

from crossbridge_otel._guard import report_failure
from crossbridge_otel.settings import load as load_settings

__all__ = ["CrossBridgeConfigurator", "active_pipeline"]

_active: list[Any] = []


def active_pipeline() -> Any:
    """The pipeline this process's configurator built, or None."""
    return _active[0] if _active else None


class CrossBridgeConfigurator:
    """Builds the providers through :mod:`crossbridge_otel.pipeline`.

    ``opentelemetry-instrument`` only calls ``configure(**kwargs)`` on the entry point's instance, so this
    does not subclass the SDK's ``_BaseConfigurator``: importing ``opentelemetry.sdk._configuration`` pulls
    in the SDK's whole environment-driven set-up that we never use (start-up budget).
    """

    def configure(self, **kwargs: Any) -> None:
        """Entry-point API of ``opentelemetry_configurator``."""
        self._configure(**kwargs)

    def _configure(self, **kwargs: Any) -> None:
        try:
            settings = load_settings()
            if not settings.enabled:
                return
            from crossbridge_otel.pipeline import configure

            _active.append(configure(settings))
        except Exception as exc:
            report_failure("configurator", exc)
