"""View: a run's telemetry without a backend.

``records`` (spans, log records, metric points, traces and runs, as plain data), ``read`` (the
``CROSSBRIDGE_OTEL_LOCAL_OUTPUT`` file, or any OTLP JSON lines file, into records), ``stats`` (per span name:
count, errors, p50/p95; per area), ``terminal`` (``crossbridge-otel show``: the trees, or the aggregate for large
runs; also the exit summary's drawing) and ``html`` (``crossbridge-otel report``: one self-contained HTML file
from ``templates/``, rendered by Jinja2 with autoescaping).

Imports nothing from the rest of the package and no OpenTelemetry module: ``export.summary`` converts its SDK
spans into :class:`records.Span` and uses ``terminal`` for its drawing.
"""
