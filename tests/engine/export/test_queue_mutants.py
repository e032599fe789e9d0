"""The export queue in detail (its surviving mutants, tests/mutation): batching, waking, counting, the exit
deadline, the processors, the fork lock. In-process, on scripted exporters; readiness is awaited, never slept."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, get_value
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

from crossbridge_otel.export.queue import ExportQueue, QueueSpanProcessor, _BuildLock

SIGNAL = "traces:test"


class Result:
    def __init__(self, name: str) -> None:
        self.name = name


class Exporter:
    """Records each batch; ``gate`` (when given) holds the first export until it is set."""

    def __init__(self, *results, gate: threading.Event | None = None, sent_before_failing=None) -> None:
        self.results = list(results)
        self.batches: list[list] = []
        self.threads: list[str] = []
        self.suppressed: list = []
        self.started = threading.Event()
        self.gate = gate
        self.shut = 0
        if sent_before_failing is not None:
            self.sent_before_failing = sent_before_failing

    def export(self, items):
        self.batches.append(list(items))
        self.threads.append(threading.current_thread().name)
        self.suppressed.append(get_value(_SUPPRESS_INSTRUMENTATION_KEY))
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
            self.gate = None
        return Result(self.results.pop(0) if self.results else "SUCCESS")

    def shutdown(self):
        self.shut += 1


def make(exporter: Exporter, **options) -> ExportQueue:
    options.setdefault("schedule_delay", 60.0)  # only a wake (a full batch, flush, close) starts an export
    return ExportQueue(SIGNAL, lambda: exporter, **options)


def settle(queue: ExportQueue) -> None:
    """Close and wait for the worker to finish everything (generous deadline: it is awaited, not slept)."""
    queue.shutdown(time.monotonic() + 10)


def test_nothing_is_built_or_started_before_the_first_item():
    """A queue nobody puts into builds no exporter, starts no thread, and flushes at once."""
    built = []
    before = set(threading.enumerate())
    queue = ExportQueue(SIGNAL, lambda: built.append(1))
    assert queue.flush(0.0) is True
    assert built == [] and set(threading.enumerate()) - before == set()


def test_items_go_out_in_batches_of_at_most_the_batch_size():
    """Five items with batch size 2, the first batch held: batches [a, b], [c, d], [e]."""
    gate = threading.Event()
    exporter = Exporter(gate=gate)
    queue = make(exporter, max_batch_size=2)
    queue.put("a")
    queue.put("b")  # a full batch: the worker wakes and takes it
    assert exporter.started.wait(10)
    for item in "cde":
        queue.put(item)
    gate.set()
    settle(queue)
    assert exporter.batches == [["a", "b"], ["c", "d"], ["e"]]
    assert (queue.exported, queue.dropped) == (5, 0)


def test_a_full_batch_wakes_the_worker_before_its_schedule():
    """Three items with batch size 3 (schedule 60 s): exported together, without waiting for the schedule."""
    exporter = Exporter()
    queue = make(exporter, max_batch_size=3)
    for item in "abc":
        queue.put(item)
    assert exporter.started.wait(10)
    assert exporter.batches == [["a", "b", "c"]]
    settle(queue)


def test_a_small_queue_wakes_the_worker_when_half_full():
    """Queue size 7, batch size 512: the third item (half the queue, rounded down) wakes the worker, not before."""
    queue = make(Exporter(), max_queue_size=7)
    queue._wake = woken = Woken()
    for item in "abc":
        queue.put(item)
        woken.after_puts.append(woken.sets)
    assert woken.after_puts == [0, 0, 1]
    settle(queue)


def test_a_full_queue_drops_and_counts_what_does_not_fit():
    """Queue size 2 while the worker is busy: the third waiting item is dropped as queue_full."""
    gate = threading.Event()
    exporter = Exporter(gate=gate)
    queue = make(exporter, max_queue_size=2, max_batch_size=1)
    queue.put("in flight")
    assert exporter.started.wait(10)
    for item in ("b", "c", "d"):
        queue.put(item)
    assert (queue.dropped, queue.drop_reasons) == (1, {"queue_full": 1})
    gate.set()
    settle(queue)
    assert queue.exported == 3


def test_items_after_close_are_dropped_as_after_shutdown():
    """Once closed the queue takes nothing more: each later item is counted as after_shutdown."""
    queue = make(Exporter())
    queue.close()
    queue.put("late")
    queue.put("later")
    assert (queue.dropped, queue.drop_reasons) == (2, {"after_shutdown": 2})


def test_flush_returns_once_everything_queued_went_out():
    """flush wakes the worker (schedule 60 s) and returns True once the item was exported."""
    queue = make(Exporter())
    queue.put("a")
    assert queue.flush(10) is True
    assert queue.exported == 1
    settle(queue)


def test_flush_gives_up_at_its_timeout():
    """flush on a worker stuck in an export returns False at its timeout."""
    gate = threading.Event()
    exporter = Exporter(gate=gate)
    queue = make(exporter)
    queue.put("a")
    assert queue.flush(0.05) is False
    gate.set()
    settle(queue)


def test_a_failed_result_drops_the_batch_as_export_failed():
    """A FAILURE result: the batch is dropped as export_failed, nothing counted as exported, a reason kept."""
    queue = make(Exporter("FAILURE"))
    queue.put("a")
    queue.put("b")
    settle(queue)
    assert (queue.exported, queue.dropped, queue.drop_reasons) == (0, 2, {"export_failed": 2})
    assert queue.problem == "the exporter reported a failure"


def test_what_an_exporter_sent_before_failing_counts_as_exported():
    """An exporter that sent 2 of a batch of 3 before failing: 2 exported, 1 dropped."""
    queue = make(Exporter("FAILURE", sent_before_failing=2), max_batch_size=3)
    for item in "abc":
        queue.put(item)
    settle(queue)
    assert (queue.exported, queue.dropped) == (2, 1)


@pytest.mark.parametrize("claimed", [4, -1, True, 2.0, "2"])
def test_an_implausible_sent_count_counts_nothing_as_sent(claimed):
    """A sent count that is not an int within the batch (too many, negative, a bool, a float, text) counts 0."""
    queue = make(Exporter("FAILURE", sent_before_failing=claimed), max_batch_size=3)
    for item in "abc":
        queue.put(item)
    settle(queue)
    assert (queue.exported, queue.dropped) == (0, 3)


class _RaisingCountExporter(Exporter):
    @property
    def sent_before_failing(self):
        raise RuntimeError("no count")


def test_a_sent_count_that_raises_counts_the_batch_as_dropped():
    """An exporter whose sent count raises: the failed batch is still counted (3 dropped), not lost from the totals."""
    queue = make(_RaisingCountExporter("FAILURE"), max_batch_size=3)
    for item in "abc":
        queue.put(item)
    settle(queue)
    assert (queue.exported, queue.dropped) == (0, 3)
    assert queue.problem == "the exporter reported a failure"


def test_a_sent_count_of_the_whole_batch_is_accepted():
    """The bounds are inclusive: an exporter that sent all 3 before its last request failed counts 3."""
    queue = make(Exporter("FAILURE", sent_before_failing=3), max_batch_size=3)
    for item in "abc":
        queue.put(item)
    settle(queue)
    assert (queue.exported, queue.dropped) == (3, 0)


def test_relabel_is_applied_to_what_is_exported():
    """The relabel function sees the batch and the exporter gets what it returns."""
    exporter = Exporter()
    queue = make(exporter, relabel=lambda items: [item.upper() for item in items])
    queue.put("a")
    settle(queue)
    assert exporter.batches == [["A"]]


def test_the_warm_up_runs_once_after_the_first_batch_went_out():
    """``first_export`` runs on the worker after the first export and never again."""
    exporter = Exporter()
    seen = []
    queue = make(exporter, max_batch_size=1, first_export=lambda: seen.append(len(exporter.batches)))
    queue.put("a")
    queue.put("b")
    settle(queue)
    assert seen == [1]
    assert len(exporter.batches) == 2


def test_exports_run_on_the_named_daemon_worker_with_instrumentation_suppressed():
    """Exports run on the daemon thread 'crossbridge-otel-<signal>', under suppressed instrumentation."""
    exporter = Exporter()
    queue = make(exporter)
    queue.put("a")
    assert queue.flush(10)
    assert queue._worker is not None and queue._worker.daemon
    assert exporter.threads == [f"crossbridge-otel-{SIGNAL}"] and exporter.suppressed == [True]
    settle(queue)


def test_the_exporter_is_built_once():
    """Several batches, one exporter built."""
    built = []

    def factory():
        built.append(threading.current_thread().name)
        return Exporter()

    queue = ExportQueue(SIGNAL, factory, max_batch_size=1, schedule_delay=60.0)
    queue.put("a")
    queue.put("b")
    settle(queue)
    assert built == [f"crossbridge-otel-{SIGNAL}"]
    assert queue.exported == 2


def test_what_is_left_at_the_deadline_is_counted_once_as_exit_deadline():
    """A batch stuck in flight and one queued at the deadline: both dropped as exit_deadline, and the stuck
    export ending later counts nothing more."""
    gate = threading.Event()
    exporter = Exporter(gate=gate)
    queue = make(exporter, max_batch_size=1)
    queue.put("in flight")
    assert exporter.started.wait(10)
    queue.put("queued")
    queue.shutdown(time.monotonic() + 0.1)
    assert (queue.dropped, queue.drop_reasons) == (2, {"exit_deadline": 2})
    gate.set()
    assert queue._worker is not None
    queue._worker.join(10)
    assert (queue.exported, queue.dropped) == (0, 2)
    assert exporter.batches == [["in flight"]]


def test_abandoning_twice_counts_once():
    """A second abandon finds nothing left to count."""
    gate = threading.Event()
    exporter = Exporter(gate=gate)
    queue = make(exporter, max_batch_size=1)
    queue.put("a")
    assert exporter.started.wait(10)
    queue.abandon("exit_deadline")
    queue.abandon("again")
    gate.set()
    assert queue.drop_reasons == {"exit_deadline": 1}


def test_shutdown_closes_the_exporter():
    """The exporter's own shutdown runs at the queue's shutdown."""
    exporter = Exporter()
    queue = make(exporter)
    queue.put("a")
    settle(queue)
    assert exporter.shut == 1


def test_the_span_processor_queues_only_sampled_spans():
    """An ended span is queued when sampled; an unsampled (recorded only) one is not."""
    exporter = Exporter()
    queue = make(exporter)
    processor = QueueSpanProcessor(queue)
    for flags in (TraceFlags.SAMPLED, TraceFlags.DEFAULT):
        context = SpanContext(trace_id=1, span_id=1 + flags, is_remote=False, trace_flags=TraceFlags(flags))
        processor.on_end(ReadableSpan(name=f"flags {flags}", context=context))
    processor.shutdown()
    assert [[span.name for span in batch] for batch in exporter.batches] == [["flags 1"]]


def test_the_span_processors_force_flush_takes_milliseconds():
    """force_flush(50) on a stuck export gives up after 50 ms (it is False), not after 50 s."""
    gate = threading.Event()
    exporter = Exporter(gate=gate)
    queue = make(exporter, max_batch_size=1)
    queue.put("a")
    assert exporter.started.wait(10)
    queue.put("b")
    assert QueueSpanProcessor(queue).force_flush(50) is False
    gate.set()
    settle(queue)


def test_a_fork_takes_the_build_lock_and_gives_it_back():
    """Before a fork the build lock is taken (no build in progress); after it, in the parent, it is free again."""
    lock = _BuildLock()
    lock._before()
    assert lock._lock.locked()
    lock._after()
    assert not lock._lock.locked()


def test_a_fork_waits_for_a_build_only_so_long():
    """A build that holds the lock past the fork's wait: the fork goes on, and leaves the builder's lock alone."""
    lock = _BuildLock()
    lock.FORK_WAIT_S = 0.01  # type: ignore[misc]
    with lock.held():
        lock._before()
        lock._after()
        assert lock._lock.locked()  # still the builder's
    assert not lock._lock.locked()


def test_the_child_of_a_fork_gets_a_free_build_lock():
    """In the child the lock inherited (held for the fork) is replaced by a free one."""
    lock = _BuildLock()
    lock._before()
    lock._child()
    assert not lock._lock.locked()
    lock._after()  # nothing held for the fork any more: nothing released twice
    assert not lock._lock.locked()


class Woken(threading.Event):
    """The worker's wake event, counting the times it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.sets = 0
        self.after_puts: list[int] = []

    def set(self) -> None:
        self.sets += 1
        super().set()


class Held(threading.Event):
    """The worker's wake event; the first time the worker wakes it is held there until ``proceed`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.awake = threading.Event()
        self.proceed = threading.Event()
        self.sleeping = threading.Semaphore(0)

    def wait(self, timeout=None):
        self.sleeping.release()
        woke = super().wait(timeout)
        if woke and not self.awake.is_set():
            self.awake.set()
            self.proceed.wait(10)
        return woke


class Watched(threading.Event):
    """The worker's wake event, recording each wait's timeout and saying when the worker goes back to sleep."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list = []
        self.sleeping = threading.Semaphore(0)

    def wait(self, timeout=None):
        self.timeouts.append(timeout)
        self.sleeping.release()
        return super().wait(timeout)


class DebugLines(logging.Handler):
    """The ``crossbridge_otel`` logger's records at DEBUG (what the distribution says about itself)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.arrived = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.arrived.set()


@pytest.fixture
def debug_lines():
    """Collect what the distribution's own logger says at DEBUG during the test."""
    logger = logging.getLogger("crossbridge_otel")
    handler, level = DebugLines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_queue_names_its_destination_or_else_its_signal():
    """``destination`` defaults to the signal; a given one is kept."""
    assert ExportQueue(SIGNAL, Exporter).destination == SIGNAL
    assert ExportQueue(SIGNAL, Exporter, destination="collector at 127.0.0.1").destination == "collector at 127.0.0.1"


def test_the_worker_waits_one_second_by_default_between_exports():
    """Without a schedule delay the worker sleeps 1 s at a time (the pipeline leaves the default)."""
    exporter = Exporter()
    queue = ExportQueue(SIGNAL, lambda: exporter)
    queue._wake = watched = Watched()
    queue.put("a")
    assert watched.sleeping.acquire(timeout=10)
    assert watched.timeouts[0] == 1.0
    settle(queue)


def test_a_lone_item_goes_out_at_the_schedule_delay():
    """One item, far from a full batch, is exported when the schedule delay ends, with no flush."""
    exporter = Exporter()
    queue = make(exporter, schedule_delay=0.01)
    queue.put("a")
    assert exporter.started.wait(10)
    assert exporter.batches == [["a"]]
    settle(queue)


def test_a_full_batch_arriving_during_an_export_goes_out_at_once():
    """Two items (a full batch of 2) put while a batch is out are exported right after it, before any schedule."""
    gate = threading.Event()
    exporter = Exporter(gate=gate)
    queue = make(exporter, max_batch_size=2)
    queue.put("a")
    queue.put("b")
    assert exporter.started.wait(10)
    exporter.started.clear()
    queue.put("c")
    queue.put("d")
    gate.set()
    assert exporter.started.wait(10)
    assert exporter.batches == [["a", "b"], ["c", "d"]]
    settle(queue)


def test_exactly_a_full_batch_left_after_the_first_goes_out_at_once():
    """Woken by a full batch of 2 with 4 waiting: both batches go out in that one wake (no wait for the schedule)."""
    exporter = Exporter()
    queue = make(exporter, max_batch_size=2)
    queue._wake = held = Held()
    queue.put("a")
    queue.put("b")  # wakes the worker, held before it takes anything
    assert held.awake.wait(10)
    queue.put("c")
    queue.put("d")
    while held.sleeping.acquire(timeout=0):  # forget the sleeps so far
        pass
    held.proceed.set()
    assert held.sleeping.acquire(timeout=10)  # back to sleep
    assert exporter.batches == [["a", "b"], ["c", "d"]]
    settle(queue)


def test_a_flush_drains_part_batches_to_the_end():
    """A flush that arrives while the worker is already awake: the part batch left after a full one goes out too."""
    exporter = Exporter()
    queue = make(exporter, max_batch_size=2)
    queue._wake = held = Held()
    queue.put("a")
    queue.put("b")
    assert held.awake.wait(10)
    queue.put("c")
    flushed = []
    flusher = threading.Thread(target=lambda: flushed.append(queue.flush(10)))
    flusher.start()
    deadline = time.monotonic() + 10
    while not queue._flush_wanted and time.monotonic() < deadline:  # the flush has asked (readiness, not a sleep)
        held.awake.wait(0.01)
    held.proceed.set()
    flusher.join(15)
    assert flushed == [True]
    assert exporter.batches == [["a", "b"], ["c"]]
    settle(queue)


def test_after_a_flush_items_arriving_during_an_export_wait_again():
    """A flush drains to the end once: later, what arrives while a batch is out waits for a full batch again."""
    gate = threading.Event()
    exporter = Exporter()
    queue = make(exporter, max_batch_size=2)
    queue._wake = watched = Watched()
    queue.put("first")
    assert queue.flush(10)
    exporter.gate, exporter.started = gate, threading.Event()
    queue.put("a")
    queue.put("b")
    assert exporter.started.wait(10)
    queue.put("late")  # half a batch, while [a, b] is out
    while watched.sleeping.acquire(timeout=0):  # forget the sleeps so far
        pass
    gate.set()
    assert watched.sleeping.acquire(timeout=10)  # the worker went back to sleep after [a, b]
    assert exporter.batches == [["first"], ["a", "b"]]
    settle(queue)


def test_a_successful_export_leaves_no_drop_reason_and_no_problem():
    """Everything exported: no drop reason entry (not even a zero) and no problem."""
    queue = make(Exporter())
    queue.put("a")
    assert queue.flush(10)
    assert (queue.drop_reasons, queue.problem) == ({}, None)
    settle(queue)


def test_abandoning_after_everything_went_out_counts_nothing():
    """Nothing queued and nothing in flight any more: abandon counts no drop."""
    queue = make(Exporter())
    queue.put("a")
    queue.put("b")
    assert queue.flush(10)
    queue.abandon("exit_deadline")
    assert (queue.exported, queue.dropped, queue.drop_reasons) == (2, 0, {})


def test_abandoning_before_any_export_counts_what_waits():
    """Items waiting for the worker's schedule, none exported yet: abandon counts exactly those."""
    queue = make(Exporter())
    queue.put("a")
    queue.put("b")
    queue.abandon("exit_deadline")
    assert (queue.dropped, queue.drop_reasons) == (2, {"exit_deadline": 2})


def test_an_abandoned_queue_takes_nothing_more():
    """After abandon (without close) a put is dropped as after_shutdown."""
    queue = make(Exporter())
    queue.abandon("exit_deadline")
    queue.put("late")
    assert queue.drop_reasons == {"after_shutdown": 1}


def test_a_result_without_a_name_counts_as_success():
    """An exporter returning None (no ``name``): the batch counts as exported."""

    class Quiet(Exporter):
        def export(self, items):
            super().export(items)

    queue = ExportQueue(SIGNAL, Quiet, schedule_delay=60.0)
    queue.put("a")
    settle(queue)
    assert (queue.exported, queue.dropped) == (1, 0)


def test_the_reason_of_a_raising_export_is_bounded():
    """An exporter raising a 500-character message: the reason kept is one line of 160 characters."""

    class Loud(Exporter):
        def export(self, items):
            raise RuntimeError("x" * 500)

    queue = ExportQueue(SIGNAL, Loud, schedule_delay=60.0)
    queue.put("a")
    settle(queue)
    assert queue.problem == "RuntimeError: " + "x" * 157 + "..."


def test_a_raising_export_is_said_at_debug_with_its_details(debug_lines):
    """An export that raises: one DEBUG line naming the signal and the error, then its traceback at DEBUG."""

    class Broken(Exporter):
        def export(self, items):
            raise RuntimeError("boom")

    queue = ExportQueue(SIGNAL, Broken, schedule_delay=60.0)
    queue.put("a")
    settle(queue)
    line, details = debug_lines.records
    assert (line.levelno, line.getMessage()) == (
        logging.DEBUG, f"crossbridge-otel: exporting {SIGNAL} failed: RuntimeError: boom")
    assert details.exc_info is not None and str(details.exc_info[1]) == "boom"


def test_a_worker_outlives_a_failure_in_its_own_drain_and_names_it():
    """Anything raised inside the worker's drain (here its export step itself) is contained and named as the
    problem, the batch it held is counted as dropped, and the worker still exports what comes next (also when the
    queue was closed meanwhile)."""
    exporter = Exporter()
    queue = make(exporter, max_batch_size=1)
    failures = iter([RuntimeError("drain broke")])
    real_export = queue._export

    def export_once_broken(batch):
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_export(batch)

    queue._export = export_once_broken
    queue.put("a")
    queue.put("b")
    settle(queue)
    assert queue.problem == "RuntimeError: drain broke"
    assert exporter.batches == [["b"]]
    assert (queue.exported, queue.dropped, queue.drop_reasons) == (1, 1, {"export_failed": 1})


def test_a_drain_failing_after_its_batch_was_abandoned_does_not_count_it_twice():
    """The exit deadline abandoned (and counted) the batch in flight; the drain then failing counts nothing more."""
    queue = make(Exporter(), max_batch_size=1)
    inside, release = threading.Event(), threading.Event()

    def stuck_then_broken(batch):
        inside.set()
        release.wait(10)
        raise RuntimeError("late failure")

    queue._export = stuck_then_broken
    queue.put("a")
    assert inside.wait(10)
    queue.abandon("exit_deadline")
    release.set()
    queue._worker.join(10)
    assert (queue.dropped, queue.drop_reasons) == (1, {"exit_deadline": 1})


def test_an_exporter_shutdown_that_raises_is_said_at_debug(debug_lines):
    """An exporter whose shutdown raises: one DEBUG line with the error, its traceback at DEBUG, nothing raised."""

    class Stubborn(Exporter):
        def shutdown(self):
            raise RuntimeError("cannot close")

    queue = ExportQueue(SIGNAL, Stubborn, schedule_delay=60.0)
    queue.put("a")
    settle(queue)
    deadline = time.monotonic() + 10
    while len(debug_lines.records) < 2 and time.monotonic() < deadline:  # the closer thread is bounded, not joined
        debug_lines.arrived.wait(0.05)
    line, details = debug_lines.records
    assert line.getMessage() == "crossbridge-otel: exporter shutdown failed: cannot close"
    assert line.levelno == logging.DEBUG and details.exc_info is not None


def test_the_exporter_is_shut_down_on_a_daemon_thread_without_waiting_for_it():
    """The exporter's shutdown runs on a daemon thread; a shutdown that blocks does not hold the queue's."""
    release, closing, closed = threading.Event(), threading.Event(), threading.Event()
    daemons = []

    class Slow(Exporter):
        def shutdown(self):
            daemons.append(threading.current_thread().daemon)
            closing.set()
            release.wait(10)
            closed.set()

    queue = ExportQueue(SIGNAL, Slow, schedule_delay=60.0)
    queue.put("a")
    settle(queue)
    still_closing = not closed.is_set()
    release.set()
    assert closing.wait(10) and daemons == [True]
    assert still_closing


def _log_record(resource, context):
    from opentelemetry._logs import LogRecord
    from opentelemetry.sdk._logs import ReadWriteLogRecord
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    return ReadWriteLogRecord(LogRecord(body="hello", context=context), resource=resource,
                              instrumentation_scope=InstrumentationScope("scope"))


def test_the_log_processor_queues_a_copy_without_its_context():
    """A log record is queued as a readable copy: same body, resource, scope and limits, an empty context; the
    application's record keeps its context."""
    from opentelemetry.context import Context, create_key, set_value
    from opentelemetry.sdk.resources import Resource

    from crossbridge_otel.export.queue import QueueLogProcessor

    key = create_key("test")
    record = _log_record(Resource({"service.name": "svc"}), set_value(key, "kept", Context()))
    exporter = Exporter()
    processor = QueueLogProcessor(make(exporter))
    processor.on_emit(record)
    processor.shutdown()
    ((queued,),) = exporter.batches
    assert queued.log_record is not record.log_record and queued.log_record.body == "hello"
    assert queued.log_record.context == Context() and record.log_record.context.get(key) == "kept"
    assert queued.resource.attributes["service.name"] == "svc" and queued.instrumentation_scope.name == "scope"
    assert queued.limits is record.limits


def test_a_log_record_without_a_resource_gets_the_empty_one():
    """A record with no resource is queued with the empty resource."""
    from opentelemetry.context import Context
    from opentelemetry.sdk.resources import Resource

    from crossbridge_otel.export.queue import QueueLogProcessor

    exporter = Exporter()
    processor = QueueLogProcessor(make(exporter))
    processor.on_emit(_log_record(None, Context()))
    processor.shutdown()
    assert exporter.batches[0][0].resource == Resource.get_empty()


def test_the_log_processors_force_flush_takes_milliseconds_and_shutdown_closes():
    """force_flush(50) on a stuck export is False after 50 ms; shutdown closes the queue (later records dropped)."""
    from crossbridge_otel.export.queue import QueueLogProcessor

    gate = threading.Event()
    queue = make(Exporter(gate=gate), max_batch_size=1)
    processor = QueueLogProcessor(queue)
    queue.put("a")
    queue.put("b")
    assert processor.force_flush(50) is False
    gate.set()
    assert processor.force_flush() is True
    processor.shutdown()
    queue.put("late")
    assert queue.drop_reasons == {"after_shutdown": 1}


def test_a_registered_fork_hands_the_child_a_free_build_lock():
    """Forked while a build holds the lock past the fork's wait: the child's lock is a free one, the parent's is
    still the builder's (registered once, however often register is called)."""
    lock = _BuildLock()
    lock.FORK_WAIT_S = 0.05  # type: ignore[misc]
    lock.register()
    lock.register()
    building_now, done = threading.Event(), threading.Event()

    def build():
        with lock.held():
            building_now.set()
            done.wait(10)

    builder = threading.Thread(target=build, daemon=True)
    builder.start()
    assert building_now.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        os._exit(0 if not lock._lock.locked() else 1)
    _, status = os.waitpid(pid, 0)
    parent_locked = lock._lock.locked()
    done.set()
    builder.join(10)
    assert os.waitstatus_to_exitcode(status) == 0
    assert parent_locked
    assert not lock._lock.locked()


def test_a_registered_fork_takes_and_gives_back_a_free_build_lock():
    """Forked with no build running: the lock is free again in the parent and free in the child."""
    lock = _BuildLock()
    lock.FORK_WAIT_S = 0.05  # type: ignore[misc]
    lock.register()
    lock.register()
    pid = os.fork()
    if pid == 0:
        os._exit(0 if not lock._lock.locked() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not lock._lock.locked()


def test_the_span_processor_queues_what_prepare_makes_of_a_span():
    """With ``prepare`` the queue holds what it returns for the span (e.g. the span already encoded)."""
    exporter = Exporter()
    processor = QueueSpanProcessor(make(exporter), prepare=lambda span: f"prepared {span.name}")
    context = SpanContext(trace_id=1, span_id=2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    processor.on_end(ReadableSpan(name="op", context=context))
    processor.shutdown()
    assert exporter.batches == [["prepared op"]]


def test_a_fork_waits_for_a_build_in_progress():
    """A fork while an exporter is being built (for 0.2 s) waits for the build to end: the child sees it built."""
    lock = _BuildLock()
    lock.register()
    building_now, built = threading.Event(), threading.Event()

    def build():
        with lock.held():
            building_now.set()
            threading.Event().wait(0.2)  # the build's own duration (an import), well under the fork's 2 s wait
            built.set()

    builder = threading.Thread(target=build, daemon=True)
    builder.start()
    assert building_now.wait(10)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if built.is_set() else 1)
    _, status = os.waitpid(pid, 0)
    builder.join(10)
    assert os.waitstatus_to_exitcode(status) == 0
