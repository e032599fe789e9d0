"""The one line at exit: what was dropped, where it could not go and why, and how to keep it next time.

For example, with no collector listening::

    crossbridge-otel: dropped 40 spans and 15 log records and 3 metric points that could not be exported to
    http://localhost:4318 (connection refused); to keep them next time, start the collector there or set
    CROSSBRIDGE_OTEL_LOCAL_OUTPUT=<file> to write them to a file

(one line on stderr). The counts are the sums over the destinations that lost something; each destination is
named with the reason of its last failed export, in a few words.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Loss", "drop_line", "losses", "short_reason"]

_WHY = {
    "exit_deadline": "not sent before the exit deadline, CROSSBRIDGE_OTEL_EXPORT_TIMEOUT",
    "queue_full": "more than CROSSBRIDGE_OTEL_MAX_QUEUE_SIZE waiting",
    "after_shutdown": "created after the exit flush",
    "interrupted": "the exit flush was interrupted",
}
_HTTP_CODE = re.compile(r"\bcode: (\d{3})\b")
_OS_ERRORS = tuple(os.strerror(code) for code in (
    errno.EACCES, errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENOENT, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
))


@dataclass
class Loss:
    """What one destination lost."""

    destination: str
    spans: int = 0
    logs: int = 0
    points: int = 0
    problem: str | None = None
    reasons: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        return self.spans + self.logs + self.points

    @property
    def is_file(self) -> bool:
        return "://" not in self.destination and self.destination != "console"


def short_reason(problem: str) -> str:
    """A failure text in a few words: ``connection refused``, ``HTTP 400``, ``timed out``, an OS error's words
    (``Permission denied``, ``Not a directory``, ...), or the text itself."""
    for words in _OS_ERRORS:
        if words in problem:
            return words
    lowered = problem.lower()
    if "connection refused" in lowered or "failed to establish a new connection" in lowered:
        return "connection refused"
    if "timed out" in lowered or "timeout" in lowered or "deadline" in lowered:
        return "timed out"
    code = _HTTP_CODE.search(problem)
    if code:
        return f"HTTP {code.group(1)}"
    return problem


def losses(span_queues: Iterable[Any], log_queues: Iterable[Any], metric_exporter: Any) -> list[Loss]:
    """Per destination, what the queues and the metric exporter dropped (destinations that lost nothing left out)."""
    found: dict[str, Loss] = {}

    def loss(destination: str) -> Loss:
        return found.setdefault(destination, Loss(destination))

    for queues, kind in ((span_queues, "spans"), (log_queues, "logs")):
        for queue in queues:
            if queue.dropped:
                entry = loss(queue.destination)
                setattr(entry, kind, getattr(entry, kind) + queue.dropped)
                entry.problem = queue.problem or entry.problem
                entry.reasons.update(queue.drop_reasons)
    if metric_exporter is not None:
        for destination, points in metric_exporter.dropped.items():
            if points:
                entry = loss(destination)
                entry.points += points
                entry.problem = entry.problem or metric_exporter.problems.get(destination)
    return [entry for entry in found.values() if entry.total]


def _why(entry: Loss) -> str:
    if entry.problem:
        return short_reason(entry.problem)
    return ", ".join(_WHY.get(reason, reason) for reason in sorted(entry.reasons)) or "not exported"


def _how(entries: list[Loss]) -> str:
    files = [entry for entry in entries if entry.is_file]
    remote = [entry for entry in entries if not entry.is_file and entry.destination != "console"]
    if files and not remote:
        return "to keep them next time, set CROSSBRIDGE_OTEL_LOCAL_OUTPUT to a file this process can write"
    if any(entry.problem and short_reason(entry.problem) == "connection refused" for entry in remote):
        first = "start the collector there"
    elif any(entry.problem for entry in remote):
        first = "check the collector"
    else:
        first = "raise CROSSBRIDGE_OTEL_EXPORT_TIMEOUT"
    return f"to keep them next time, {first} or set CROSSBRIDGE_OTEL_LOCAL_OUTPUT=<file> to write them to a file"


def drop_line(entries: list[Loss]) -> str | None:
    """The one line for ``entries`` (see the module docstring), or None when nothing was dropped."""
    if not entries:
        return None
    spans = sum(entry.spans for entry in entries)
    logs = sum(entry.logs for entry in entries)
    points = sum(entry.points for entry in entries)
    what = f"dropped {spans} spans and {logs} log records"
    if points:
        what += f" and {points} metric points"
    where = "; ".join(f"{'written to' if e.is_file else 'exported to'} {e.destination} ({_why(e)})" for e in entries)
    return f"crossbridge-otel: {what} that could not be {where}; {_how(entries)}"
