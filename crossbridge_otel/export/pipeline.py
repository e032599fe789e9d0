"""Build the tracer, logger and meter providers and their exporters; shut them down within a deadline.

Exporters follow the standard variables: ``OTEL_{TRACES,LOGS,METRICS}_EXPORTER`` (``otlp`` by default,
also ``console`` and ``none``) and ``OTEL_EXPORTER_OTLP[_<SIGNAL>]_PROTOCOL`` (``http/protobuf`` by default,
``grpc`` on request: gRPC is imported only then). ``CROSSBRIDGE_OTEL_LOCAL_OUTPUT`` adds an OTLP JSON lines
file, ``CROSSBRIDGE_OTEL_SUMMARY`` a trace tree on stderr at exit.

Exporter classes are imported on the export worker threads, never at start-up. At exit, everything gets
``CROSSBRIDGE_OTEL_EXPORT_TIMEOUT`` seconds in total (a ``KeyboardInterrupt`` or a signal handler's exception
during that wait ends it at once); what is left is dropped, and one line on the ``crossbridge_otel`` logger says
what was dropped, where it could not go and why, and how to keep it next time (:mod:`.losses`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal as signals
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import SpanLimits, TracerProvider

from crossbridge_otel import _voice
from crossbridge_otel._guard import contained
from crossbridge_otel.export import encoding
from crossbridge_otel.export.losses import drop_line, losses
from crossbridge_otel.export.metrics import DeadlineMetricExporter
from crossbridge_otel.export.queue import ExportQueue, QueueLogProcessor, QueueSpanProcessor
from crossbridge_otel.export.resource import ProcessResource, build_resource
from crossbridge_otel.settings import Settings
from crossbridge_otel.settings import load as load_settings

__all__ = ["ATTRIBUTE_LENGTH_LIMIT", "Pipeline", "arm_exit", "attribute_length_limit", "configure", "destinations",
           "exporter_names"]

SIGNALS = ("traces", "logs", "metrics")
# Spans per OTLP/HTTP export (the SDK's batch is 512): a request costs about 1.4 ms of CPU whatever its size, so
# bigger batches mean less CPU per span; export.otlp_http splits a batch whose request would exceed 4 MiB.
OTLP_HTTP_SPAN_BATCH = 2048
ATTRIBUTE_LENGTH_LIMIT = 16_384  # characters of one attribute value (stack traces fit; a file's contents do not)


def exporter_names(signal: str, environ: Mapping[str, str]) -> list[str]:
    raw = environ.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp")
    return [name.strip() for name in raw.split(",") if name.strip() and name.strip() != "none"]


def otlp_protocol(signal: str, environ: Mapping[str, str]) -> str:
    return (
        environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()


def attribute_length_limit(environ: Mapping[str, str]) -> int | None:
    """The longest attribute value kept (longer strings are cut): ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` when set
    (the SDK reads it, and its per-signal variants, itself), else :data:`ATTRIBUTE_LENGTH_LIMIT`.

    The SDK's own default is no limit: one 10 MB value handed to CrossBridge would travel in a span, and a
    collector refuses the whole request (its default body limit is a few MB), losing the batch around it.
    """
    return None if environ.get("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "").strip() else ATTRIBUTE_LENGTH_LIMIT


def otlp_destination(signal: str, protocol: str, environ: Mapping[str, str]) -> str:
    """The endpoint an OTLP exporter of ``signal`` sends to, as the user named it (for our messages)."""
    specific = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    if specific:
        return specific
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return base or ("http://localhost:4317" if protocol == "grpc" else "http://localhost:4318")


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
        # requests imports netrc at its first request; importing it here, while the exporter is built under the
        # lock fork waits for (export.queue.building), keeps a fork from landing in the middle of that import.
        import netrc  # noqa: F401

        if signal == "traces":
            # the SDK's exporter with a wire-format encoder (export.encoding): same request, a fraction of the CPU
            from crossbridge_otel.export.otlp_http import FastOTLPSpanExporter

            return FastOTLPSpanExporter()
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
    """(label, factory) for each exporter configured for ``signal``; :func:`destinations` says where each goes."""
    return [(label, factory) for label, _, factory in _exporters(signal, settings, environ)]


def destinations(signal: str, settings: Settings, environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """(label, destination) for each exporter configured for ``signal``: the endpoint, file or ``console``."""
    return [(label, destination) for label, destination, _ in _exporters(signal, settings, environ)]


def _exporters(
    signal: str, settings: Settings, environ: Mapping[str, str]
) -> list[tuple[str, str, Callable[[], Any]]]:
    found: list[tuple[str, str, Callable[[], Any]]] = []
    for name in exporter_names(signal, environ):
        if name == "otlp":
            protocol = otlp_protocol(signal, environ)
            found.append((f"otlp ({protocol})", otlp_destination(signal, protocol, environ),
                          _otlp_factory(signal, protocol)))
        elif name == "console":
            found.append(("console", "console", _console_factory(signal)))
        # any other name is skipped: the distro already warned about it at start-up, with a suggestion
    if settings.local_output:
        path = settings.local_output

        def build_file() -> Any:
            from crossbridge_otel.export.localfile import JsonLinesExporter

            return JsonLinesExporter(path, signal)

        found.append((f"file {path}", path, build_file))
    return found


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
    metric_exporter: DeadlineMetricExporter | None = None
    exporters: dict[str, list[str]] = field(default_factory=dict)
    summary: Any = None
    _done: bool = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` has run (the lazy providers then hand out no-op meters)."""
        return self._done

    def dropped(self) -> dict[str, int]:
        """Spans, log records and metric data points dropped so far (summed over destinations)."""
        return {
            "spans": sum(q.dropped for q in self.span_queues),
            "logs": sum(q.dropped for q in self.log_queues),
            "metrics": sum(self.metric_exporter.dropped.values()) if self.metric_exporter else 0,
        }

    def exported(self) -> dict[str, int]:
        """Spans, log records and metric data points exporters accepted so far (summed over destinations)."""
        return {
            "spans": sum(q.exported for q in self.span_queues),
            "logs": sum(q.exported for q in self.log_queues),
            "metrics": sum(self.metric_exporter.exported.values()) if self.metric_exporter else 0,
        }

    def shutdown(self, report: bool = True) -> dict[str, int]:
        """Flush and stop everything within ``export_timeout`` seconds; returns the drop counts.

        An exception raised into the wait (``KeyboardInterrupt``, a signal handler's) abandons what is left,
        counted as dropped, and is re-raised after the report.
        """
        if self._done:
            return self.dropped()
        self._done = True
        deadline = time.monotonic() + float(self.settings.export_timeout)
        try:
            self._flush(deadline)
        except BaseException:
            self._abandon("interrupted")
            if report:
                self._report()
            raise
        if report:
            self._report()
        return self.dropped()

    def exit_flush(self) -> None:
        """The interpreter-exit flush: an interruption ends the wait quietly (no traceback at exit).

        The program has already finished when this runs, so a ``SIGTERM`` (left at its default by the
        application) or a ``KeyboardInterrupt`` arriving during the flush stops the flush, not the program: the
        rest is counted as dropped, the one line is said, and the process leaves with the program's own status.
        """
        previous = _stop_flush_on_sigterm()
        try:
            with contextlib.suppress(BaseException):
                self.shutdown()
        finally:
            _restore_sigterm(previous)

    def _flush(self, deadline: float) -> None:
        with _voice.on_our_thread():  # what the SDK and the exporters log while we flush is ours to report
            self._flush_all(deadline)

    def _flush_all(self, deadline: float) -> None:
        queues = (*self.span_queues, *self.log_queues)
        for queue in queues:
            queue.close()  # every worker starts its last export now: the exports run side by side
        if self.metric_exporter is not None:
            self.metric_exporter.deadline = deadline
        with contained("meter provider shutdown"):
            self.meter_provider.shutdown(timeout_millis=max(0.0, deadline - time.monotonic()) * 1000)
        for queue in queues:
            queue.shutdown(deadline)

    def _abandon(self, reason: str) -> None:
        for queue in (*self.span_queues, *self.log_queues):
            queue.abandon(reason)
        if self.metric_exporter is not None:
            self.metric_exporter.abandon(reason)

    def _report(self) -> None:
        if self.summary is not None:
            with contained("printing the summary"):
                self.summary.print(sys.stderr)
        line = drop_line(losses(self.span_queues, self.log_queues, self.metric_exporter))
        if line:
            _voice.say(logging.WARNING, line)


class FlushInterrupted(BaseException):
    """Raised into the exit flush by ``SIGTERM`` (a BaseException: no ``except Exception`` may swallow it)."""


def _interrupt_flush(signum: int, frame: Any) -> None:
    raise FlushInterrupted(signum)


def _stop_flush_on_sigterm() -> Any:
    """Install :func:`_interrupt_flush` for SIGTERM if the application left it at its default; returns the old."""
    if threading.current_thread() is not threading.main_thread():
        return None
    with contextlib.suppress(Exception):
        if signals.getsignal(signals.SIGTERM) is signals.SIG_DFL:
            return signals.signal(signals.SIGTERM, _interrupt_flush)
    return None


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        with contextlib.suppress(Exception):
            signals.signal(signals.SIGTERM, previous)


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
    length = attribute_length_limit(env)
    tracer_provider = TracerProvider(resource=resource.parent, shutdown_on_exit=False,
                                     span_limits=SpanLimits(max_attribute_length=length))
    logger_provider = LoggerProvider(resource=resource.parent, shutdown_on_exit=False,
                                     log_record_limits=LogRecordLimits(max_attribute_length=length))
    exporters: dict[str, list[str]] = {}
    metric_found = _exporters("metrics", settings, env)
    exporters["metrics"] = [label for label, _, _ in metric_found]
    readers: list[MetricReader] = list(extra_metric_readers)
    metric_exporter = None
    if metric_found:
        metric_exporter = DeadlineMetricExporter([(dest, factory) for _, dest, factory in metric_found],
                                                 resource.relabel_metrics)
        readers.append(PeriodicExportingMetricReader(metric_exporter))
    # A worker's first export also builds the metric exporters, so the exit flush does not pay their imports.
    warm_up = metric_exporter.prepare if metric_exporter is not None else None
    span_queues: list[ExportQueue] = []
    log_queues: list[ExportQueue] = []
    fast_otlp: list[ExportQueue] = []  # our OTLP/HTTP span exporter's queues (export.otlp_http)
    for signal, queues in (("traces", span_queues), ("logs", log_queues)):
        found = _exporters(signal, settings, env)
        exporters[signal] = [label for label, _, _ in found]
        relabel = resource.relabel_spans if signal == "traces" else resource.relabel_logs
        for label, destination, factory in found:
            fast = (signal, label) == ("traces", "otlp (http/protobuf)")
            queues.append(ExportQueue(f"{signal}:{label}", factory, max_queue_size=int(settings.max_queue_size),
                                      max_batch_size=OTLP_HTTP_SPAN_BATCH if fast else 512, relabel=relabel,
                                      destination=destination, first_export=warm_up))
            if fast:
                fast_otlp.append(queues[-1])
    for queue in span_queues:
        # Our OTLP/HTTP exporter's queue, once it holds half a batch, takes each span encoded as it ends
        # (export.encoding.prepare: bytes, not two dozen objects for the garbage collector to walk at every full
        # collection, a fifth of the process's CPU at full speed); every other exporter gets the spans themselves.
        prepare = encoding.prepare if queue in fast_otlp else None
        tracer_provider.add_span_processor(QueueSpanProcessor(queue, prepare, OTLP_HTTP_SPAN_BATCH // 2))
    for queue in log_queues:
        logger_provider.add_log_record_processor(QueueLogProcessor(queue))
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
        description="Spans, log records and metric points crossbridge-otel could not export",
    )
    if set_global:
        trace_api.set_tracer_provider(tracer_provider)
        metrics_api.set_meter_provider(meter_provider)
        from opentelemetry._logs import set_logger_provider

        set_logger_provider(logger_provider)
        arm_exit(pipeline)
    return pipeline


def arm_exit(pipeline: Pipeline) -> None:
    """Make ``pipeline`` the process's: its threads out of the application's logs, the ``crossbridge_otel``
    logger its own stderr line (:mod:`crossbridge_otel._voice`), and a bounded flush at interpreter exit and at
    a multiprocessing child's exit."""
    _voice.install()
    atexit.register(pipeline.exit_flush)
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

    util.Finalize(None, pipeline.exit_flush, exitpriority=0)
