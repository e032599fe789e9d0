"""Export: getting telemetry out of the process without slowing or holding it.

``pipeline`` (the providers, exporters and the bounded exit), ``queue`` (the bounded queues drained by daemon
worker threads), ``lazy`` (providers built on first use), ``resource`` (service and process attributes, refreshed
after fork), ``localfile`` (OTLP JSON lines to a file) and ``summary`` (the trace tree printed at exit).

May import: the top-level ``_guard``, ``settings``, ``version``; never ``patching``, ``logs``, ``retry`` or ``doctor``.
"""
