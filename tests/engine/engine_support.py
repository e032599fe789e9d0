"""Small helpers shared by the engine tests."""

from __future__ import annotations

from crossbridge_otel import status


def state_of(module: str, qualname: str) -> status.TargetStatus:
    """The status registry's row for one target."""
    rows = [s for s in status.snapshot() if (s.module, s.qualname) == (module, qualname)]
    assert len(rows) == 1, rows
    return rows[0]
