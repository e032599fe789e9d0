"""A real CrossBridge run under opentelemetry-instrument for the in-flight claims (collector death, fork).

    opentelemetry-instrument python inflight_workload.py collector|fork

Work: JaCoCo parses through the real ``core.coverage.jacoco_parser`` (one ``coverage.parse`` span each) and a
warning on a ``core.*`` logger (one log record each, its body numbered so duplicates can be told apart), in
phases. No sleep stands for a moment: each one is awaited (a line from the test on stdin, a queue's own flush)
or forced (a queue's ``flush(0)`` starts its export now instead of at the 1 s schedule).

- ``collector``: phase 1, exported at once (the test's collector dies in the middle of it), then waits for the
  test's line on stdin (sent once the collector died, and came back or not), phase 2;
- ``fork``: phase 1 exported (awaited), more work whose span batch goes out at once (the test's collector holds
  it), then, on the test's line (the collector holds it), ``os.fork()``; the child works and exits, the parent
  waits for it and works again;
- ``fork-early``: the fork comes with the very first batch, as soon as the export thread took it (it may still be
  importing its exporter: that moment is polled for, it lasts until the test releases the held request).

At exit each process prints ``CREATED {"pid", "spans", "logs"}``: what it created (counted by processors of our
own on the real providers), after the distribution's own bounded exit flush, which says what it dropped on stderr.

``CLAIMS_BREAK`` (see tests/claims/conftest.py) breaks the distribution inside this process:
``uncounted_drops`` (nothing dropped is counted), ``uncounted_interrupted`` (the batch an exit deadline cut short
is not counted), ``uncounted_failed`` (a batch whose export failed is not counted), ``fork_relabel`` (the
child's telemetry keeps the parent's resource), ``fork_keeps_queue`` (the child inherits and re-sends what the
parent had queued).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PER_PHASE = 5
HANG_GUARD_S = 60.0  # a wait that never ends is a failure, reported; not a timing assumption


class _Counts:
    def __init__(self) -> None:
        self.spans = self.logs = self.seq = 0
        os.register_at_fork(after_in_child=self.__init__)  # a forked child counts its own


COUNTS = _Counts()


def _arm(pipeline) -> None:
    from opentelemetry._logs import get_logger_provider
    from opentelemetry.sdk._logs import LogRecordProcessor
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.trace import get_tracer_provider

    class SpanCount(SpanProcessor):
        def on_end(self, span) -> None:
            COUNTS.spans += 1

    class LogCount(LogRecordProcessor):
        def on_emit(self, log_record) -> None:
            COUNTS.logs += 1

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    get_tracer_provider().add_span_processor(SpanCount())
    get_logger_provider().add_log_record_processor(LogCount())

    def flush_then_print() -> None:
        pipeline.exit_flush()
        print("CREATED " + json.dumps({"pid": os.getpid(), "spans": COUNTS.spans, "logs": COUNTS.logs}), flush=True)

    atexit.unregister(pipeline.exit_flush)
    atexit.register(flush_then_print)  # a forked child inherits it and flushes its own pipeline state


def _break(pipeline, names: set[str]) -> None:
    from crossbridge_otel.export import queue as queue_module

    if "uncounted_drops" in names:
        def drop(self, count: int, reason: str) -> None:
            pass  # nothing dropped is counted, so the exit line says nothing

        queue_module.ExportQueue._drop = drop
    if "uncounted_interrupted" in names:
        real_abandon = queue_module.ExportQueue.abandon

        def abandon(self, reason: str) -> None:
            self._in_flight = 0  # the export cut short by the exit deadline is forgotten, not counted
            real_abandon(self, reason)

        queue_module.ExportQueue.abandon = abandon
    if "uncounted_failed" in names:
        real_drop = queue_module.ExportQueue._drop

        def drop_unless_failed(self, count: int, reason: str) -> None:
            if reason != "export_failed":  # a batch whose export failed is not counted
                real_drop(self, count, reason)

        queue_module.ExportQueue._drop = drop_unless_failed
    if "fork_relabel" in names:
        def keep_parent_resource() -> None:
            for q in (*pipeline.span_queues, *pipeline.log_queues):
                q._relabel = None

        os.register_at_fork(after_in_child=keep_parent_resource)
    if "fork_keeps_queue" in names:
        saved: dict[int, list] = {}

        def save() -> None:
            for q in (*pipeline.span_queues, *pipeline.log_queues):
                saved[id(q)] = list(q._items)

        def restore() -> None:
            for q in (*pipeline.span_queues, *pipeline.log_queues):
                for item in saved.get(id(q), []):
                    q.put(item)

        os.register_at_fork(before=save, after_in_child=restore)


def phase(tag: str, count: int = PER_PHASE) -> None:
    from core.coverage.jacoco_parser import JaCoCoXMLParser

    log = logging.getLogger("core.claims.inflight")
    parser = JaCoCoXMLParser()
    for index in range(count):
        parser.parse(SAMPLES / "jacoco.xml", test_id=f"{tag}.{index}")
        COUNTS.seq += 1
        log.warning("claims-log %s %s %s", os.getpid(), tag, COUNTS.seq)


def _await_test(what: str) -> None:
    """Block until the test writes a line on stdin (it does once the collector reached the moment it waits for)."""
    if not sys.stdin.readline():
        raise SystemExit(f"the test closed stdin before {what}")


def main(mode: str) -> int:
    from crossbridge_otel.configurator import active_pipeline

    pipeline = active_pipeline()
    _arm(pipeline)
    _break(pipeline, set(filter(None, os.environ.get("CLAIMS_BREAK", "").split(","))))
    queues = (*pipeline.span_queues, *pipeline.log_queues)
    phase("one")
    if mode == "collector":
        for q in queues:
            q.flush(0)  # phase one goes out now: the collector dies in the middle of one of these exports
        _await_test("the collector died")
        phase("two")
        return 0
    if mode == "fork":
        # Both exporters built and used once, then a second span batch (the one the collector holds): the fork
        # meets an export in flight, not the exporters' first import (mode fork-early, see the report).
        if not all(q.flush(HANG_GUARD_S) for q in queues):
            raise SystemExit("the first batches were never delivered")
        phase("one-b")
    for q in pipeline.span_queues:
        q.flush(0)  # this span batch goes out now; the collector holds it until the test releases it
    if mode == "fork":
        _await_test("the collector held the batch")  # the server has read it and not answered: in flight
    else:
        # fork-early: the moment the worker took the batch (it may be building its exporter): polled, since the
        # queue has no event for it; it lasts until the test releases the held request, so the poll cannot miss it
        while not any(q._in_flight for q in pipeline.span_queues):
            time.sleep(0.001)
    in_flight = sum(q._in_flight for q in pipeline.span_queues)
    phase("queued", 1)  # one span and one log record waiting in the parent's queues at the fork
    pid = os.fork()
    if pid == 0:
        phase("child")
        sys.exit(0)
    print(f"FORKED child={pid} in_flight={in_flight}", flush=True)
    os.waitpid(pid, 0)
    phase("two")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
