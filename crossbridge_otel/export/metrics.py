"""The metric exporter behind the SDK's periodic reader: built lazily, bounded at exit, honest about drops.

The SDK's ``PeriodicExportingMetricReader`` calls :meth:`DeadlineMetricExporter.export` on its own thread, and
once more from ``MeterProvider.shutdown`` at exit. Here:

- the real exporters (OTLP, console, the local file) are built on the first export that has data points, so a
  process that records nothing never imports requests or protobuf, nor dials the collector at exit;
- the export runs as one of the distribution's own threads (:mod:`crossbridge_otel._voice`): what the HTTP stack
  logs there stays out of the application's handlers;
- at exit each export is bounded by the pipeline's deadline: a collector that hangs costs the deadline, and the
  points still in flight are counted as dropped (``exit_deadline``), never twice;
- every data point is counted as exported or dropped, per destination, with the reason of the last failure;
- after ``fork`` the child builds its own exporters: an inherited one would send the child's requests over the
  parent's pooled keep-alive connection, interleaving the two processes' bytes on one socket (the corrupt OTLP
  metrics request seen under CrossBridge's test suite, issue 11).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from crossbridge_otel import _voice
from crossbridge_otel.export.queue import building

__all__ = ["DeadlineMetricExporter", "count_points"]

Factory = tuple[str, Callable[[], Any]]  # (destination, build the exporter)


def count_points(metrics_data: MetricsData | None) -> int:
    """How many data points ``metrics_data`` holds."""
    if metrics_data is None:
        return 0
    return sum(
        len(metric.data.data_points)
        for rm in metrics_data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
    )


class _Call:
    """One export of ``points`` points to every destination; each destination is settled exactly once."""

    def __init__(self, points: int, destinations: Sequence[str]) -> None:
        self.points = points
        self.pending = set(destinations)
        self.ok = True


class DeadlineMetricExporter(MetricExporter):
    """Builds the real metric exporters lazily and bounds each export by the pipeline's exit deadline."""

    def __init__(self, factories: Sequence[Factory], relabel: Callable[[Any], Any] | None = None) -> None:
        super().__init__()
        self._factories = list(factories)
        self._relabel = relabel
        self.deadline: float | None = None
        self._lock = threading.Lock()
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        # Dropped, never closed: closing would act on the parent's connections (shared file descriptors).
        self._exporters: list[tuple[str, Any]] | None = None
        self._lock = threading.Lock()
        self._calls: set[_Call] = set()
        self.exported: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        self.problems: dict[str, str] = {}

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        points = count_points(metrics_data)
        if not points:
            return MetricExportResult.SUCCESS
        call = _Call(points, [destination for destination, _ in self._factories])
        with self._lock:
            self._calls.add(call)
        try:
            if self.deadline is None:
                self._run(metrics_data, call)
            else:
                worker = threading.Thread(
                    target=self._run, args=(metrics_data, call), name="crossbridge-otel-metrics-exit", daemon=True
                )
                worker.start()
                worker.join(max(0.0, self.deadline - time.monotonic()))
                if worker.is_alive():
                    self._settle_all(call, "exit_deadline", _voice.problem_of(worker))
        finally:
            self._settle_all(call, "exit_deadline")
        return MetricExportResult.SUCCESS if call.ok else MetricExportResult.FAILURE

    def prepare(self) -> None:
        """Build the exporters now (an export worker calls this at its first export, so the imports are not
        paid again in the exit flush, where the deadline runs). Never raises."""
        try:
            self._build()
        except Exception as exc:  # built again, and reported, at the first real export
            _voice.say(logging.DEBUG, "crossbridge-otel: preparing the metric exporters failed", exc=exc)

    def _build(self) -> list[tuple[str, Any]]:
        # under the queues' build lock, which fork waits for (see crossbridge_otel.export.queue)
        with building(), self._lock:
            if self._exporters is None:
                self._exporters = [(destination, factory()) for destination, factory in self._factories]
            return self._exporters

    def abandon(self, reason: str) -> None:
        """Count every point still in flight as dropped for ``reason`` (the exit flush was interrupted)."""
        with self._lock:
            calls = list(self._calls)
        for call in calls:
            self._settle_all(call, reason)

    def _run(self, metrics_data: MetricsData, call: _Call) -> None:
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            with _voice.on_our_thread():
                exporters = self._build()
                data = self._relabel(metrics_data) if self._relabel is not None else metrics_data
                for destination, exporter in exporters:
                    self._settle(call, destination, *_export_one(exporter, data))
        except BaseException as exc:  # (a failing build or relabel: every destination dropped)
            self._settle_all(call, "export_failed", f"{type(exc).__name__}: {_voice.one_line(exc, 160)}")
            _voice.say(logging.DEBUG, "crossbridge-otel: exporting metrics failed", exc=exc)
        finally:
            detach(token)

    def _settle(self, call: _Call, destination: str, ok: bool, problem: str | None) -> None:
        with self._lock:
            if destination not in call.pending:
                return  # already counted as dropped when the exit deadline passed
            call.pending.discard(destination)
            if not call.pending:
                self._calls.discard(call)
            if ok:
                self.exported[destination] = self.exported.get(destination, 0) + call.points
                return
            call.ok = False
            self.dropped[destination] = self.dropped.get(destination, 0) + call.points
            if problem:
                self.problems[destination] = problem

    def _settle_all(self, call: _Call, reason: str, problem: str | None = None) -> None:
        for destination in list(call.pending):
            self._settle(call, destination, False, problem or _REASONS.get(reason, reason))

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        for _, exporter in self._exporters or []:
            try:
                exporter.shutdown()
            except Exception as exc:  # nothing the user can act on: DEBUG only
                _voice.say(logging.DEBUG, "crossbridge-otel: metric exporter shutdown failed", exc=exc)


_REASONS = {"exit_deadline": "no answer before the exit deadline", "interrupted": "the exit flush was interrupted"}


def _export_one(exporter: Any, data: MetricsData) -> tuple[bool, str | None]:
    """(succeeded, why not) for one exporter; what it logged on this thread explains a failure."""
    _voice.take_problem()
    try:
        result = exporter.export(data)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {_voice.one_line(exc, 160)}"
    if getattr(result, "name", "SUCCESS") == "SUCCESS":
        return True, None
    return False, _voice.take_problem() or "the exporter reported a failure"
