"""Export: getting telemetry out of the process without slowing or holding it.

``pipeline`` (the providers, exporters and the bounded exit), ``queue`` (the bounded queues drained by daemon
worker threads), ``metrics`` (the metric exporter behind the SDK's reader: lazy, bounded, counted), ``losses`` (the
one line at exit: what was dropped, where, why, how to keep it), ``lazy`` (providers built on first use),
``resource`` (service and process attributes, refreshed after fork), ``localfile`` (OTLP JSON lines to a file) and
``summary`` (the trace tree printed at exit).

May import: the top-level ``_guard``, ``_voice``, ``settings``, ``version``; never ``patching``, ``logs``, ``retry``
or ``doctor``.
"""
