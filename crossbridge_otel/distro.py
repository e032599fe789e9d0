"""The distro ``opentelemetry-instrument`` loads first: environment defaults only.

Defaults (each only when the user has not set it): OTLP exporters for traces, logs and metrics over
``http/protobuf``, and service name ``crossbridge``. It also contains a failing instrumentor so that one
area failing to load never stops the others (``opentelemetry-instrument`` itself stops at the first one).
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.instrumentation.dependencies import DependencyConflictError
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

from crossbridge_otel import libraries
from crossbridge_otel._guard import report_failure

__all__ = ["DEFAULTS", "CrossBridgeDistro"]

DEFAULTS = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_LOGS_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
}


def _names_service(resource_attributes: str) -> bool:
    """Whether an ``OTEL_RESOURCE_ATTRIBUTES`` value sets ``service.name`` (spaces allowed around keys)."""
    return any(pair.partition("=")[0].strip() == "service.name" for pair in resource_attributes.split(","))


class CrossBridgeDistro(BaseDistro):  # type: ignore[misc]
    """Sets environment defaults; see the module docstring."""

    def _configure(self, **kwargs: Any) -> None:
        for name, value in {**DEFAULTS, **libraries.ENV_DEFAULTS}.items():
            os.environ.setdefault(name, value)
        if not _names_service(os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")):
            os.environ.setdefault("OTEL_SERVICE_NAME", "crossbridge")

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        try:
            # contrib libraries get our configuration (URL redaction hooks, ...): crossbridge_otel.libraries
            kwargs = {**libraries.instrument_kwargs(entry_point.name), **kwargs}
            super().load_instrumentor(entry_point, **kwargs)
        except (ImportError, DependencyConflictError):
            # opentelemetry-instrument already handles these per entry point (a library that is not
            # installed is skipped quietly); containing them here turned each into a warning + traceback.
            raise
        except Exception as exc:
            report_failure(f"instrumentor {entry_point.name}", exc)
