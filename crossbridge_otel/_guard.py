"""The one guard every hook and wrapper body runs behind: "running fine, less telemetry".

A failure inside the distribution is reported once per place on the ``crossbridge_otel`` logger and never
reaches the application. With ``CROSSBRIDGE_OTEL_STRICT=true`` (the project's own tests) it is re-raised.
"""

from __future__ import annotations

import logging
import os
import threading

__all__ = ["contained_failures", "report_failure", "reset", "strict"]

_log = logging.getLogger("crossbridge_otel")
_lock = threading.Lock()
_reported: dict[str, int] = {}


def strict() -> bool:
    """True when failures inside the distribution must be re-raised (read on each failure, not hot)."""
    return os.environ.get("CROSSBRIDGE_OTEL_STRICT", "").strip().lower() in {"1", "true", "yes", "on"}


def report_failure(where: str, exc: BaseException) -> None:
    """Count a contained failure, log the first one for ``where``, re-raise it in strict mode."""
    with _lock:
        count = _reported.get(where, 0)
        _reported[where] = count + 1
    if count == 0:
        _log.warning(
            "crossbridge-otel: instrumentation failure in %s was contained (%s: %s); the application "
            "goes on with less telemetry", where, type(exc).__name__, exc, exc_info=exc,
        )
    if strict():
        raise exc


def contained_failures() -> dict[str, int]:
    """How many failures each place has contained so far (for doctor and tests)."""
    with _lock:
        return dict(_reported)


def reset() -> None:
    """Forget the contained-failure counts, so the next failure in each place is logged again (tests)."""
    with _lock:
        _reported.clear()
