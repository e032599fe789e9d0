"""The distro ``opentelemetry-instrument`` loads first: environment defaults only.

Defaults (each only when the user has not set it): OTLP exporters for traces, logs and metrics over
``http/protobuf``, and service name ``crossbridge``. It also contains an instrumentor that fails while
instrumenting (opentelemetry-instrument would re-raise it and stop loading the rest), so one area failing
never stops the others; a missing library (ImportError) is left to opentelemetry-instrument, which skips it.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

from crossbridge_otel._guard import report_failure
from crossbridge_otel.settings import load as load_settings

__all__ = ["DEFAULTS", "CrossBridgeDistro"]

DEFAULTS = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_LOGS_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
}

_SQL_INSTRUMENTATIONS = {"psycopg2"}  # the ones with a capture_parameters option


class CrossBridgeDistro(BaseDistro):  # type: ignore[misc]
    """Sets environment defaults; see the module docstring."""

    def _configure(self, **kwargs: Any) -> None:
        for name, value in DEFAULTS.items():
            os.environ.setdefault(name, value)
        if "service.name=" not in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", ""):
            os.environ.setdefault("OTEL_SERVICE_NAME", "crossbridge")

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        if entry_point.name in _SQL_INSTRUMENTATIONS:
            # SQL parameter values stay out of telemetry unless the user opts in (TELEMETRY.md).
            kwargs.setdefault("capture_parameters", load_settings(warn=False).capture_sql_parameters)
        try:
            super().load_instrumentor(entry_point, **kwargs)
        except ImportError:
            raise  # opentelemetry-instrument skips an instrumentation whose library is missing, quietly
        except Exception as exc:
            report_failure(f"instrumentor {entry_point.name}", exc)
