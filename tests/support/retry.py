"""Helpers of the retry tests (a uniquely named module: every test directory has its own conftest)."""

from __future__ import annotations


def retry_events(span) -> list[dict]:
    """The attributes of the span's ``retry`` events, in order."""
    return [dict(e.attributes) for e in span.events if e.name == "retry"]


def attempts_by_outcome(telemetry, operation: str) -> dict[str, int]:
    """``crossbridge.retry.attempts`` values for one operation, keyed by outcome."""
    return {p.attributes["outcome"]: p.value for p in telemetry.metric_points("crossbridge.retry.attempts")
            if p.attributes["operation"] == operation}
