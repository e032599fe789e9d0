"""One real CrossBridge run with one fault injected into the application, for the fault matrix.

    python workload.py <fault> <workdir>

It imports the real CrossBridge (``crossbridge_target.crossbridge_env()`` puts it on ``PYTHONPATH``), runs the
same small job in every mode, plainly or under ``opentelemetry-instrument``, and prints:

- ``RESULT {json}``: what CrossBridge returned (the figure compared with the plain run);
- ``PHASE-1-DONE``: between the phases (the test may kill its collector then);
- ``END <epoch seconds>``: from the program's last statement, so the test can time the exit (the flush);
- ``FLUSH-ARMED``: only under the distribution, once its exit flush is under way (the signal rows signal then);
- ``FAULT-STATS {json}``: only under the distribution, right after its exit flush (its ``atexit`` entry is
  replaced by one that runs the same flush and then prints): spans and log records created (counted by
  processors of our own on the real providers) and what the pipeline says it exported and dropped. A forked
  child prints its own.

The job: two phases of CrossBridge work (JaCoCo parses, a coverage impact query, CrossBridge's own logger and a
plain ``core.*`` logger), with a pause between them long enough for an export to happen mid-run.

Faults inside the application (the ones at the collector are set up by the test):

==================  ============================================================================================
``none``            nothing
``raising-filter``  CrossBridge's ``setup_logging()`` then ``configure_secure_logging()``: its filter raises
                    ``TypeError`` for records with ``%`` arguments once two root handlers carry it
``blocking-handler``  a root handler (DEBUG) that blocks forever on any record not logged by the main thread
``dictconfig``      root reconfigured by ``dictConfig`` (DEBUG handler on stdout, existing loggers disabled),
                    then ``logging.disable(INFO)``
``odd-attributes``  CrossBridge given bytes, a numpy scalar, a 10 MB string and a recursive list where our
                    readers take attribute values
``fork``            ``os.fork()`` while an export is in flight; the child does CrossBridge work too
``exporter-raises``  the SDK's OTLP exporters raise on every export (patched in this process)
==================  ============================================================================================
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PHASE_OPERATIONS = 6
# Pacing, not synchronisation: > the export queues' 1 s schedule delay, so one export (exporter build included)
# happens between the phases and the exit flush meets a built exporter, as in a longer real run.
PAUSE_S = 1.3
EXPORT_WAIT_S = 30  # bounds a failure only: an export that never begins fails the row


class _Counts:
    """Spans and log records this process created (reset in a forked child)."""

    def __init__(self) -> None:
        self.spans = 0
        self.logs = 0
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.spans = 0
        self.logs = 0


COUNTS = _Counts()
INSTRUMENTED = bool(os.environ.get("FAULT_STATS"))


def _say_when_the_flush_is_armed() -> None:
    """Print ``FLUSH-ARMED`` once the exit flush has taken SIGTERM: the flush is under way, and the signal rows
    send their signal then (not a set time after ``END``)."""
    deadline = time.monotonic() + 30
    while signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        if time.monotonic() > deadline:
            return
        time.sleep(0.002)
    sys.stdout.write("FLUSH-ARMED\n")
    sys.stdout.flush()


def _flush_then_print_stats(pipeline) -> None:
    """The distribution's own exit flush, then what was created, exported, dropped."""
    threading.Thread(target=_say_when_the_flush_is_armed, daemon=True).start()
    started = time.time()
    pipeline.exit_flush()
    stats = {"pid": os.getpid(), "flush_s": round(time.time() - started, 3),
             "created": {"spans": COUNTS.spans, "logs": COUNTS.logs},
             "exported": pipeline.exported(), "dropped": pipeline.dropped()}
    sys.stdout.write("FAULT-STATS " + json.dumps(stats, sort_keys=True) + "\n")
    sys.stdout.flush()


def _count_created() -> None:
    from opentelemetry._logs import get_logger_provider
    from opentelemetry.sdk._logs import LogRecordProcessor
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.trace import get_tracer_provider

    from crossbridge_otel.configurator import active_pipeline

    class SpanCount(SpanProcessor):
        def on_end(self, span):
            if span.context.trace_flags.sampled:
                COUNTS.spans += 1

    class LogCount(LogRecordProcessor):
        def on_emit(self, log_record):
            COUNTS.logs += 1

        def shutdown(self):
            pass

        def force_flush(self, timeout_millis=30000):
            return True

    get_tracer_provider().add_span_processor(SpanCount())
    get_logger_provider().add_log_record_processor(LogCount())
    pipeline = active_pipeline()
    PIPELINE.append(pipeline)
    atexit.unregister(pipeline.exit_flush)
    atexit.register(_flush_then_print_stats, pipeline)


PIPELINE: list = []  # the distribution's pipeline, under opentelemetry-instrument


def _await_span_request() -> None:
    """Under the distribution, wait until a span batch is in flight on a built exporter (its request under way,
    not the exporter's first import); plainly there is nothing to wait for."""
    if not PIPELINE:
        return
    queues = PIPELINE[0].span_queues
    deadline = time.monotonic() + EXPORT_WAIT_S
    while not any(q._in_flight and q._exporter is not None for q in queues):
        if time.monotonic() > deadline:
            state = [(q._in_flight, q._exporter is not None, q.exported, q.dropped, q.problem) for q in queues]
            raise SystemExit(f"workload: no span request in flight after {EXPORT_WAIT_S} s: {state}")
        time.sleep(0.005)


# -- faults inside the application ------------------------------------------------------------------------


def raising_filter(workdir: Path) -> None:
    os.environ["CROSSBRIDGE_LOG_DIR"] = str(workdir / "crossbridge-logs")
    from services.logging_service import configure_secure_logging, setup_logging

    setup_logging("INFO")
    configure_secure_logging()


class _BlockingHandler(logging.Handler):
    """Blocks forever on a record from any thread but the main one (a handler stuck on a lock or a socket)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.never = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if threading.current_thread() is not threading.main_thread():
            self.never.wait()


def blocking_handler(workdir: Path) -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(_BlockingHandler())


def dictconfig(workdir: Path) -> None:
    import logging.config

    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": True,
        "formatters": {"plain": {"format": "%(name)s %(levelname)s %(message)s"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                             "formatter": "plain", "level": "DEBUG"}},
        "root": {"level": "DEBUG", "handlers": ["out"]},
    })
    logging.disable(logging.INFO)


def exporter_raises(workdir: Path) -> None:
    from opentelemetry.exporter.otlp.proto.http import _log_exporter, metric_exporter, trace_exporter

    def broken(self, *args, **kwargs):
        raise RuntimeError("an exporter that raises on every export")

    trace_exporter.OTLPSpanExporter.export = broken
    _log_exporter.OTLPLogExporter.export = broken
    metric_exporter.OTLPMetricExporter.export = broken


APP_FAULTS = {
    "none": None, "raising-filter": raising_filter, "blocking-handler": blocking_handler,
    "dictconfig": dictconfig, "odd-attributes": None, "fork": None, "exporter-raises": exporter_raises,
}


# -- the job ---------------------------------------------------------------------------------------------


def phase(number: int, results: list) -> None:
    from core.coverage.jacoco_parser import JaCoCoXMLParser
    from core.logging import LogCategory, get_logger

    cb_log = get_logger("faults.workload", LogCategory.TESTING)
    plain_log = logging.getLogger("core.faults.workload")
    parser = JaCoCoXMLParser()
    for index in range(PHASE_OPERATIONS):
        mapping = parser.parse(SAMPLES / "jacoco.xml", test_id=f"t{number}.{index}")
        classes = len(mapping.covered_classes)
        cb_log.info("parsed a JaCoCo report", phase=number, classes=classes)
        plain_log.warning("phase operation done")
        results.append(classes)


def odd_attributes(workdir: Path, results: list) -> None:
    """Values of odd types handed to CrossBridge where our readers take attribute values."""
    import numpy
    from core.coverage.engine import CoverageMappingEngine

    engine = CoverageMappingEngine(workdir / "coverage.db")
    recursive: list = []
    recursive.append(recursive)
    for value in (b"\x00\xffbytes", numpy.float32(0.5), numpy.int64(3), "x" * (10 * 1024 * 1024), recursive):
        try:
            outcome = engine.query_impact({"com.example.Login"}, value)
            results.append(["ok", len(outcome.affected_tests)])
        except Exception as exc:
            results.append(["raised", type(exc).__name__])


def forked(workdir: Path, results: list) -> None:
    """Fork while the first phase's export is in flight (the test's collector answers slowly)."""
    _await_span_request()
    pid = os.fork()
    if pid == 0:
        child: list = []
        phase(3, child)
        sys.stdout.flush()
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    results.append(["child exit", os.waitstatus_to_exitcode(status)])


def main() -> int:
    fault, workdir = sys.argv[1], Path(sys.argv[2])
    if INSTRUMENTED:
        _count_created()
    setup = APP_FAULTS[fault]
    if setup is not None:
        setup(workdir)
    results: list = []
    phase(1, results)
    print("PHASE-1-DONE", flush=True)
    if fault == "fork":
        forked(workdir, results)
    else:
        time.sleep(PAUSE_S)
    phase(2, results)
    if fault == "odd-attributes":
        odd_attributes(workdir, results)
    print("RESULT " + json.dumps(results), flush=True)
    print("END", repr(time.time()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
