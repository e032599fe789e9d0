"""Logs: CrossBridge's log records as OpenTelemetry log records.

``bridge`` (which loggers get a handler, and uninstalling them exactly) and ``handler`` (one record's conversion:
severity, category, fields, caller location, redaction, trace context).

May import: the top-level ``_guard``, ``redaction``, ``version`` and ``patching.wrapping``; never ``export``,
``retry`` or ``doctor``.
"""
