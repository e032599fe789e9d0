"""Build the tracer, logger and meter providers and their exporters; shut them down within a deadline.

Exporters follow the standard variables: ``OTEL_{TRACES,LOGS,METRICS}_EXPORTER`` (``otlp`` by default,
also ``console`` and ``none``) and ``OTEL_EXPORTER_OTLP[_<SIGNAL>]_PROTOCOL`` (``http/protobuf`` by default,
``grpc`` on request: gRPC is imported only then). ``CROSSBRIDGE_OTEL_LOCAL_OUTPUT`` adds an OTLP JSON lines
file, ``CROSSBRIDGE_OTEL_SUMMARY`` a trace tree on stderr at exit.

Exporter classes are imported on the export worker threads, never at start-up. At exit, everything gets
``CROSSBRIDGE_OTEL_EXPORT_TIMEOUT`` seconds in total; what is left is dropped and reported on stderr.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import TracerProvider

from crossbridge_otel._guard import report_failure
from crossbridge_otel.export.queue import ExportQueue, QueueLogProcessor, QueueSpanProcessor
from crossbridge_otel.export.resource import ProcessResource, build_resource
from crossbridge_otel.settings import Settings
from crossbridge_otel.settings import load as load_settings

__all__ = ["Pipeline", "arm_exit", "configure", "exporter_names"]

SIGNALS = ("traces", "logs", "metrics")


def exporter_names(signal: str, environ: Mapping[str, str]) -> list[str]:
    raw = environ.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp")
    return [name.strip() for name in raw.split(",") if name.strip() and name.strip() != "none"]


def otlp_protocol(signal: str, environ: Mapping[str, str]) -> str:
    return (
        environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()


def _otlp_factory(signal: str, protocol: str) -> Callable[[], Any]:
    def build() -> Any:
        if protocol == "grpc":
            if signal == "traces":
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as grpc_span

                return grpc_span()
            if signal == "logs":
                from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as grpc_log

                return grpc_log()
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as grpc_metric

            return grpc_metric()
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter()
        if signal == "logs":
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

            return OTLPLogExporter()
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()

    return build


def _console_factory(signal: str) -> Callable[[], Any]:
    def build() -> Any:
        if signal == "traces":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            return ConsoleSpanExporter()
        if signal == "logs":
            from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

            return ConsoleLogRecordExporter()
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()

    return build


def exporter_factories(
    signal: str, settings: Settings, environ: Mapping[str, str]
) -> list[tuple[str, Callable[[], Any]]]:
    """(label, factory) for each exporter configured for ``signal``."""
    factories: list[tuple[str, Callable[[], Any]]] = []
    for name in exporter_names(signal, environ):
        if name == "otlp":
            protocol = otlp_protocol(signal, environ)
            factories.append((f"otlp ({protocol})", _otlp_factory(signal, protocol)))
        elif name == "console":
            factories.append(("console", _console_factory(signal)))
        else:
            report_failure(f"OTEL_{signal.upper()}_EXPORTER", ValueError(f"unknown exporter {name!r} ignored"))
    if settings.local_output:
        path = settings.local_output

        def build_file() -> Any:
            from crossbridge_otel.export.localfile import JsonLinesExporter

            return JsonLinesExporter(path, signal)

        factories.append((f"file {path}", build_file))
    return factories


class _DeadlineMetricExporter(MetricExporter):
    """Builds the real metric exporter lazily and bounds each export by the pipeline's exit deadline."""

    def __init__(
        self, factories: Sequence[tuple[str, Callable[[], Any]]], relabel: Callable[[Any], Any] | None = None
    ) -> None:
        super().__init__()
        self._factories = factories
        self._relabel = relabel
        self._exporters: list[Any] | None = None
        self.deadline: float | None = None

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        if not _has_points(metrics_data):
            # Nothing recorded: building the exporter (requests, protobuf) and dialling the collector at
            # the exit of every `python -c pass` would cost start-up budget and, collector down, exit time.
            return MetricExportResult.SUCCESS
        outcome: list[MetricExportResult] = []

        def run() -> None:
            token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
            try:
                if self._exporters is None:
                    self._exporters = [factory() for _, factory in self._factories]
                data = self._relabel(metrics_data) if self._relabel is not None else metrics_data
                results = [exporter.export(data) for exporter in self._exporters]
                ok = all(getattr(r, "name", "SUCCESS") == "SUCCESS" for r in results)
                outcome.append(MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE)
            except Exception as exc:
                report_failure("exporting metrics", exc)
            finally:
                detach(token)

        if self.deadline is None:
            run()
        else:
            worker = threading.Thread(target=run, name="crossbridge-otel-metrics-exit", daemon=True)
            worker.start()
            worker.join(max(0.0, self.deadline - time.monotonic()))
        return outcome[0] if outcome else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        for exporter in self._exporters or []:
            try:
                exporter.shutdown()
            except Exception as exc:
                report_failure("metric exporter shutdown", exc)


def _has_points(metrics_data: MetricsData | None) -> bool:
    if metrics_data is None:
        return False
    return any(
        metric.data.data_points
        for rm in metrics_data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
    )


@dataclass
class Pipeline:
    """The providers the configurator built, and the queues behind them."""

    settings: Settings
    resource: ProcessResource
    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    meter_provider: MeterProvider
    span_queues: list[ExportQueue] = field(default_factory=list)
    log_queues: list[ExportQueue] = field(default_factory=list)
    metric_exporter: _DeadlineMetricExporter | None = None
    exporters: dict[str, list[str]] = field(default_factory=dict)
    summary: Any = None
    _done: bool = False

    def dropped(self) -> dict[str, int]:
        return {
            "spans": sum(q.dropped for q in self.span_queues),
            "logs": sum(q.dropped for q in self.log_queues),
        }

    def shutdown(self, report: bool = True) -> dict[str, int]:
        """Flush and stop everything within ``export_timeout`` seconds; returns the drop counts."""
        if self._done:
            return self.dropped()
        self._done = True
        deadline = time.monotonic() + float(self.settings.export_timeout)
        try:
            if self.metric_exporter is not None:
                self.metric_exporter.deadline = deadline
            self.meter_provider.shutdown(timeout_millis=max(0.0, deadline - time.monotonic()) * 1000)
        except Exception as exc:
            report_failure("meter provider shutdown", exc)
        for queue in (*self.span_queues, *self.log_queues):
            queue.shutdown(deadline)
        dropped = self.dropped()
        if report:
            self._report(dropped)
        return dropped

    def _report(self, dropped: dict[str, int]) -> None:
        if self.summary is not None:
            self.summary.print(sys.stderr)
        if dropped["spans"] or dropped["logs"]:
            reasons: dict[str, int] = {}
            for queue in (*self.span_queues, *self.log_queues):
                for reason, count in queue.drop_reasons.items():
                    reasons[reason] = reasons.get(reason, 0) + count
            detail = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items()))
            sys.stderr.write(
                f"crossbridge-otel: dropped {dropped['spans']} spans and {dropped['logs']} log records "
                f"that could not be exported ({detail})\n"
            )


def _observe_drops(pipeline: Pipeline) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        counts = pipeline.dropped()
        # Only once something was dropped: a zero here would make every process export metrics at exit.
        return [Observation(count, {"signal": signal}) for signal, count in counts.items() if count]

    return observe


def configure(
    settings: Settings | None = None,
    environ: Mapping[str, str] | None = None,
    set_global: bool = True,
    extra_metric_readers: Sequence[MetricReader] = (),
) -> Pipeline:
    """Build the providers; with ``set_global`` install them and register the bounded exit."""
    env = os.environ if environ is None else environ
    settings = settings or load_settings(env)
    resource = ProcessResource(build_resource())
    tracer_provider = TracerProvider(resource=resource.parent, shutdown_on_exit=False)
    logger_provider = LoggerProvider(resource=resource.parent, shutdown_on_exit=False)
    queue_size = int(settings.max_queue_size)
    span_queues, log_queues, exporters = [], [], {}
    for signal in ("traces", "logs"):
        factories = exporter_factories(signal, settings, env)
        exporters[signal] = [label for label, _ in factories]
        for label, factory in factories:
            relabel = resource.relabel_spans if signal == "traces" else resource.relabel_logs
            queue = ExportQueue(f"{signal}:{label}", factory, max_queue_size=queue_size, relabel=relabel)
            if signal == "traces":
                tracer_provider.add_span_processor(QueueSpanProcessor(queue))
                span_queues.append(queue)
            else:
                logger_provider.add_log_record_processor(QueueLogProcessor(queue))
                log_queues.append(queue)
    metric_factories = exporter_factories("metrics", settings, env)
    exporters["metrics"] = [label for label, _ in metric_factories]
    readers: list[MetricReader] = list(extra_metric_readers)
    metric_exporter = None
    if metric_factories:
        metric_exporter = _DeadlineMetricExporter(metric_factories, resource.relabel_metrics)
        readers.append(PeriodicExportingMetricReader(metric_exporter))
    meter_provider = MeterProvider(resource=resource.parent, metric_readers=readers, shutdown_on_exit=False)
    pipeline = Pipeline(
        settings, resource, tracer_provider, logger_provider, meter_provider,
        span_queues, log_queues, metric_exporter, exporters,
    )
    if settings.summary:
        from crossbridge_otel.export.summary import SummaryProcessor

        pipeline.summary = SummaryProcessor()
        tracer_provider.add_span_processor(pipeline.summary)
    meter_provider.get_meter("crossbridge_otel").create_observable_counter(
        "crossbridge.telemetry.dropped", callbacks=[_observe_drops(pipeline)], unit="{item}",
        description="Spans and log records crossbridge-otel could not export",
    )
    if set_global:
        trace_api.set_tracer_provider(tracer_provider)
        metrics_api.set_meter_provider(meter_provider)
        from opentelemetry._logs import set_logger_provider

        set_logger_provider(logger_provider)
        arm_exit(pipeline)
    return pipeline


def arm_exit(pipeline: Pipeline) -> None:
    """Shut ``pipeline`` down (bounded) at interpreter exit, and at a multiprocessing child's exit."""
    atexit.register(pipeline.shutdown)
    os.register_at_fork(after_in_child=lambda: _arm_multiprocessing_exit(pipeline))
    process = sys.modules.get("multiprocessing.process")
    if process is not None and process.parent_process() is not None:
        # built lazily inside a multiprocessing child: it leaves through os._exit, flush from its finalizers
        _finalize_in_child(pipeline)


def _arm_multiprocessing_exit(pipeline: Pipeline) -> None:
    """A multiprocessing child leaves through ``os._exit`` (no atexit): flush from its exit finalizers.

    multiprocessing clears its finalizers in the child after fork and then runs its after-fork hooks, so
    the finalizer is registered from one of those.
    """
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.register_after_fork(pipeline, _finalize_in_child)


def _finalize_in_child(pipeline: Pipeline) -> None:
    from multiprocessing import util

    util.Finalize(None, pipeline.shutdown, exitpriority=0)
