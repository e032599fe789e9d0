"""Aggregates: per span name (count, errors, p50/p95/max), per area, and the totals of a file."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crossbridge_otel.view.records import Span, Telemetry

__all__ = [
    "COST_KEY", "DROPPED_METRIC", "AreaStats", "NameStats", "Totals", "by_area", "by_name", "cost_line",
    "model_call_cost", "percentile", "totals",
]

DROPPED_METRIC = "crossbridge.telemetry.dropped"
COST_KEY = "crossbridge.ai.cost_usd"  # US dollars, CrossBridge's own estimate_cost, on each model-call span


def model_call_cost(attributes: Mapping[str, Any]) -> float | None:
    """The estimated cost of one model call (a ``gen_ai.operation.name`` span), else None.

    Only the model-call spans count: the AI steps above them carry the sum of their calls, so adding those too would
    count every dollar twice.
    """
    if "gen_ai.operation.name" not in attributes:
        return None
    cost = attributes.get(COST_KEY)
    return float(cost) if isinstance(cost, (int, float)) else 0.0


def cost_line(model_calls: int, cost_usd: float) -> str:
    """``AI: 2 model call(s), estimated cost $0.000330 (USD, CrossBridge's estimate_cost)``."""
    return f"AI: {model_calls} model call(s), estimated cost ${cost_usd:.6f} (USD, CrossBridge's estimate_cost)"


_SAMPLE = 10_000  # durations kept per name; past it a uniform reservoir sample (bounded memory at exit)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (``q`` in 0..100); 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class NameStats:
    """Every span of one name: how many, how many failed, and how long they took (ms)."""

    name: str
    count: int = 0
    errors: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    durations: list[float] = field(default_factory=list, repr=False)
    _rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)

    def add(self, duration_ms: float, error: bool) -> None:
        self.count += 1
        self.errors += error
        self.total_ms += duration_ms
        self.max_ms = max(self.max_ms, duration_ms)
        if len(self.durations) < _SAMPLE:
            self.durations.append(duration_ms)
        else:
            slot = self._rng.randrange(self.count)
            if slot < _SAMPLE:
                self.durations[slot] = duration_ms

    @property
    def p50(self) -> float:
        return percentile(self.durations, 50)

    @property
    def p95(self) -> float:
        return percentile(self.durations, 95)


def by_name(spans: Iterable[Span]) -> list[NameStats]:
    """Per span name, the most time-consuming first."""
    stats: dict[str, NameStats] = {}
    for span in spans:
        stats.setdefault(span.name, NameStats(span.name)).add(span.duration_ms, span.error)
    return sorted(stats.values(), key=lambda s: (-s.total_ms, s.name))


@dataclass
class AreaStats:
    """The spans of one CrossBridge area (``crossbridge.area``)."""

    area: str
    spans: int = 0
    errors: int = 0
    retries: int = 0
    total_ms: float = 0.0


def by_area(spans: Iterable[Span]) -> list[AreaStats]:
    """Per area, the most spans first."""
    areas: dict[str, AreaStats] = {}
    for span in spans:
        row = areas.setdefault(span.area, AreaStats(span.area))
        row.spans += 1
        row.errors += span.error
        row.retries += len(span.retries)
        row.total_ms += span.duration_ms
    return sorted(areas.values(), key=lambda a: (-a.spans, a.area))


@dataclass
class Totals:
    """The headline numbers of a file."""

    runs: int
    processes: int
    traces: int
    spans: int
    errors: int
    retries: int
    retried_spans: int
    logs: int
    points: int
    dropped: dict[str, int]
    bad_lines: int
    model_calls: int = 0
    cost_usd: float = 0.0


def _dropped(telemetry: Telemetry) -> dict[str, int]:
    # A cumulative counter: the last (largest) value per process and signal, summed over processes.
    latest: dict[tuple[str, str], float] = {}
    for point in telemetry.points:
        if point.name == DROPPED_METRIC and point.value is not None:
            key = (str(point.resource.get("service.instance.id", "")), str(point.attributes.get("signal", "")))
            latest[key] = max(latest.get(key, 0.0), point.value)
    dropped: dict[str, int] = {}
    for (_, signal), value in latest.items():
        dropped[signal] = dropped.get(signal, 0) + int(value)
    return dropped


def totals(telemetry: Telemetry) -> Totals:
    runs = telemetry.runs()
    costs = [c for c in (model_call_cost(s.attributes) for s in telemetry.spans) if c is not None]
    return Totals(
        runs=len(runs),
        processes=len({p for r in runs for p in r.processes}),
        traces=len(telemetry.traces),
        spans=len(telemetry.spans),
        errors=sum(1 for s in telemetry.spans if s.error),
        retries=sum(len(s.retries) for s in telemetry.spans),
        retried_spans=sum(1 for s in telemetry.spans if s.retries),
        logs=len(telemetry.logs),
        points=len(telemetry.points),
        dropped=_dropped(telemetry),
        bad_lines=telemetry.bad_lines,
        model_calls=len(costs),
        cost_usd=sum(costs),
    )
