"""Per-target status registry: what the distribution did to each target, and why not.

``crossbridge-otel doctor`` prints it, so a user never has to guess whether instrumentation applied.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass

__all__ = ["State", "TargetStatus", "record", "snapshot"]


class State(str, enum.Enum):
    PATCHED = "patched"
    WAITING = "waiting for import"
    MODULE_MISSING = "module missing"
    ATTRIBUTE_MISSING = "attribute missing"
    FAILED = "failed"
    DISABLED = "disabled by configuration"
    REMOVED = "uninstrumented"


@dataclass(frozen=True)
class TargetStatus:
    area: str
    module: str
    qualname: str
    span: str
    state: State
    detail: str = ""


_lock = threading.Lock()
_registry: dict[tuple[str, str, str], TargetStatus] = {}


def record(area: str, module: str, qualname: str, span: str, state: State, detail: str = "") -> None:
    """Set the status of one target (last write wins)."""
    with _lock:
        _registry[(area, module, qualname)] = TargetStatus(area, module, qualname, span, state, detail)


def snapshot() -> list[TargetStatus]:
    """Every known target's status, ordered by area, module and name."""
    with _lock:
        return [_registry[key] for key in sorted(_registry)]


def clear() -> None:
    """Forget every status (tests)."""
    with _lock:
        _registry.clear()
