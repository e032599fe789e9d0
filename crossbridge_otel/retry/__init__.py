"""Retry: the retry layer on ``backoff``, and what CrossBridge's own loops did.

``invoker`` (``Retry``, the retry invoker a target row declares), ``policies`` (named attempt/delay policies and
their overrides), ``transient`` (which failures are worth another attempt), ``swallowed`` (reading a transient
failure CrossBridge swallowed into a return value, and whether a write reached commit), ``attempts`` (``retry`` span
events and the attempts metric, also for loops we only observe), ``observed`` (``ObservedRetry``: a row's own
CrossBridge retry loop, observed) and ``ratelimit`` (``RateLimit``: token buckets and ``rate_limit.wait``).

May import: the top-level ``_guard``, ``redaction``, ``settings`` and ``patching``; never ``export``, ``logs`` or
``doctor``.
"""
