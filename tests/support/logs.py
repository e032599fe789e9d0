"""Small helpers shared by the log bridge tests."""

from __future__ import annotations


def attrs(record) -> dict:
    """A log record's attributes as a plain dict."""
    return dict(record.attributes or {})


def by_body(telemetry, text: str) -> list:
    """Exported records whose body starts with ``text``."""
    return [r for r in telemetry.logs() if str(r.body).startswith(text)]

