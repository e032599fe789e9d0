"""The export queue (``crossbridge_otel.export.queue``) across fork, and against exporters that fail in any way."""

from __future__ import annotations

import subprocess
import sys
import time

from crossbridge_otel.export.queue import ExportQueue

FORK_DURING_BUILD = """
import os, pathlib, sys, tempfile, threading, time
folder = tempfile.mkdtemp()
# the module says when its import has begun (its import lock is held from then), then imports slowly
pathlib.Path(folder, "slow_exporter_module.py").write_text(
    "import __main__, time\\n__main__.importing.set()\\ntime.sleep(0.6)\\n")
sys.path.insert(0, folder)
from crossbridge_otel.export.queue import ExportQueue

class Exporter:
    def export(self, items):
        return type("Result", (), {"name": "SUCCESS"})()
    def shutdown(self):
        pass

def build():
    import slow_exporter_module  # the worker holds this module's import lock for 0.6 s
    return Exporter()

importing = threading.Event()
queue = ExportQueue("traces:test", build, schedule_delay=0.01)
queue.put("parent item")
assert importing.wait(30)  # the worker is inside the import now
pid = os.fork()
if pid == 0:
    # another thread first: the child's worker must not reuse the dead worker's thread id (which would make the
    # inherited import lock look like its own), as in a real child where the SDK's metric reader starts first
    threading.Thread(target=time.sleep, args=(3,), daemon=True).start()
    queue.put("child item")
    queue.shutdown(time.monotonic() + 3.0)
    os._exit(0 if queue.exported == 1 else 3)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
"""


def test_fork_during_an_exporter_build_leaves_the_child_able_to_export():
    """A fork while a worker imports its exporter waits for the import; the child then exports its own item.

    Without that wait the child inherits the module's import lock held by a thread it does not have, and its
    worker blocks on it until the exit deadline (the "fork during an export" row lost the child's telemetry).
    """
    done = subprocess.run([sys.executable, "-c", FORK_DURING_BUILD], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["child", "0"], (done.stdout, done.stderr)


class Result:
    def __init__(self, name):
        self.name = name


def _drained(queue: ExportQueue) -> None:
    deadline = time.monotonic() + 5
    while queue.exported + queue.dropped < 3 and time.monotonic() < deadline:
        queue.flush(0.1)


def test_worker_survives_an_exporter_that_raises_even_system_exit():
    """A batch whose export raises (SystemExit included) is dropped and counted; the next batch goes out."""
    calls = []

    class Flaky:
        def export(self, items):
            calls.append(list(items))
            if len(calls) == 1:
                raise SystemExit("an exporter that exits")
            return Result("SUCCESS")

    queue = ExportQueue("traces:test", Flaky, schedule_delay=0.01, max_batch_size=1)
    for item in ("a", "b", "c"):
        queue.put(item)
    _drained(queue)
    queue.shutdown(time.monotonic() + 1)
    assert (queue.exported, queue.dropped) == (2, 1)
    assert queue.problem == "SystemExit: an exporter that exits"


def test_failed_result_keeps_what_the_exporter_logged_as_the_reason():
    """A FAILURE result is counted, with the first warning the exporter logged on the worker as the reason."""
    import logging

    from crossbridge_otel import _voice

    class Refused:
        def export(self, items):
            logging.getLogger("opentelemetry.exporter.test").warning("Transient error %s", "Connection refused")
            logging.getLogger("opentelemetry.exporter.test").warning("Shutdown in progress, aborting retry.")
            return Result("FAILURE")

    _voice.install()
    try:
        queue = ExportQueue("traces:test", Refused, schedule_delay=0.01)
        queue.put("a")
        queue.flush(2)
        queue.shutdown(time.monotonic() + 1)
    finally:
        _voice.uninstall()
    assert queue.dropped == 1 and queue.drop_reasons == {"export_failed": 1}
    assert queue.problem == "Transient error Connection refused"


def test_an_export_given_up_at_exit_keeps_what_it_said_as_the_reason():
    """At the exit deadline a worker still retrying is abandoned; the warning it logged is the reason given."""
    import logging
    import threading

    from crossbridge_otel import _voice

    release, retrying = threading.Event(), threading.Event()

    class Retrying:
        def export(self, items):
            logging.getLogger("opentelemetry.exporter.test").warning("Transient error Connection refused, retrying")
            retrying.set()
            release.wait(5)  # the SDK's backoff sleep
            return Result("FAILURE")

    _voice.install()
    try:
        queue = ExportQueue("traces:test", Retrying, schedule_delay=0.01)
        queue.put("a")
        assert retrying.wait(10)  # the worker is in its export's backoff
        queue.shutdown(time.monotonic() + 0.2)
    finally:
        release.set()
        _voice.uninstall()
    assert queue.drop_reasons == {"exit_deadline": 1}
    assert queue.problem == "Transient error Connection refused, retrying"


def test_items_sent_before_a_later_request_failed_count_as_exported():
    """An exporter that sent part of a batch before a request failed has that part exported, the rest dropped."""

    class Split:
        sent_before_failing = 0

        def export(self, items):
            self.sent_before_failing = 2  # two of the batch went out in a first request; the second request failed
            return Result("FAILURE")

    queue = ExportQueue("traces:test", Split, schedule_delay=3600, max_batch_size=5)
    for item in "abcde":
        queue.put(item)
    assert queue.flush(10)
    queue.shutdown(time.monotonic() + 1)
    assert (queue.exported, queue.dropped, queue.drop_reasons) == (2, 3, {"export_failed": 3})


def test_a_full_batch_wakes_the_worker_before_the_schedule_delay():
    """The batch's last item wakes the worker at once; in a small queue, half the queue does (before it is full)."""
    import threading

    for max_queue, max_batch, puts in ((100, 3, 3), (4, 100, 2)):
        exported = threading.Event()

        class Exporter:
            def export(self, items, exported=exported):
                exported.set()
                return Result("SUCCESS")

        queue = ExportQueue("traces:test", Exporter, schedule_delay=3600, max_queue_size=max_queue,
                            max_batch_size=max_batch)
        for index in range(puts):
            assert not exported.is_set()
            queue.put(index)
        assert exported.wait(10), (max_queue, max_batch)  # (10 s bounds a failure: the delay is an hour)
        queue.shutdown(time.monotonic() + 1)


def test_flush_waits_for_items_put_after_the_queue_went_idle():
    """After one flush emptied the queue, a put makes the next flush wait for that item too."""
    class Exporter:
        def export(self, items):
            return Result("SUCCESS")

    queue = ExportQueue("traces:test", Exporter, schedule_delay=3600)
    queue.put("first")
    assert queue.flush(10) and queue.exported == 1
    queue.put("second")
    assert queue.flush(10) and queue.exported == 2
    queue.shutdown(time.monotonic() + 1)


def test_items_arriving_during_an_export_wait_for_a_full_batch():
    """What arrives while a batch is out waits for a full batch or the schedule delay: no trailing small request."""
    import queue as queues
    import threading

    calls: list[int] = []
    waits: queues.Queue[bool] = queues.Queue()

    class Watched(threading.Event):
        def wait(self, timeout=None):  # the worker going back to sleep
            waits.put(True)
            return super().wait(timeout)

    class Exporter:
        def export(self, items):
            calls.append(len(items))
            if len(calls) == 1:
                for item in ("late 1", "late 2"):  # arrive while the first batch is out
                    export_queue.put(item)
            return Result("SUCCESS")

    export_queue = ExportQueue("traces:test", Exporter, schedule_delay=3600, max_batch_size=4)
    export_queue._wake = Watched()
    for item in range(4):
        export_queue.put(item)
    waits.get(timeout=10)  # the first wait, before the batch filled
    waits.get(timeout=10)  # back to sleep after the first batch
    assert calls == [4]
    assert export_queue.flush(10) and calls == [4, 2]
    export_queue.shutdown(time.monotonic() + 1)


def test_a_span_processor_prepares_spans_only_once_its_queue_holds_enough():
    """Below prepare_from queued items a span goes in as itself; from there on as what prepare makes of it."""
    from opentelemetry.sdk.trace import TracerProvider

    from crossbridge_otel.export.queue import QueueSpanProcessor

    class Exporter:
        def export(self, items):
            return Result("SUCCESS")

    queue = ExportQueue("traces:test", Exporter, schedule_delay=3600, max_batch_size=100)
    provider = TracerProvider()
    provider.add_span_processor(QueueSpanProcessor(queue, lambda span: ("prepared", span.name), prepare_from=2))
    for name in ("a", "b", "c", "d"):
        with provider.get_tracer("t").start_as_current_span(name):
            pass
    kept = [item if isinstance(item, tuple) else item.name for item in queue._items]
    assert kept == ["a", "b", ("prepared", "c"), ("prepared", "d")]
    queue.shutdown(time.monotonic() + 1)


def test_a_span_processor_queues_sampled_spans_only():
    """A span a sampler records without sampling (RECORD_ONLY: its sampled flag unset) is not queued; sampled are."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    from crossbridge_otel.export.queue import QueueSpanProcessor

    class RecordOnlyUnlessKept(Sampler):
        def should_sample(self, parent_context, trace_id, name, *args, **kwargs):
            return SamplingResult(Decision.RECORD_AND_SAMPLE if name.startswith("kept") else Decision.RECORD_ONLY)

        def get_description(self) -> str:
            return "record only unless kept"

    queue = ExportQueue("traces:test", lambda: None, schedule_delay=3600, max_batch_size=100)
    provider = TracerProvider(sampler=RecordOnlyUnlessKept())
    provider.add_span_processor(QueueSpanProcessor(queue))
    for name in ("kept 1", "recorded only", "kept 2"):
        with provider.get_tracer("t").start_as_current_span(name) as span:
            assert span.is_recording()
    assert [item.name for item in queue._items] == ["kept 1", "kept 2"]
    queue.abandon("test")
