"""Export off the application's thread, with a bounded exit and an honest count of what was dropped.

The SDK's batch processors block the exiting process for the exporter's whole retry window when the
collector is down (6-30 s here). :class:`ExportQueue` instead:

- takes items on the application's thread with one lock and an append (full → dropped and counted);
- exports from one daemon worker thread, which also builds the exporter (so ``python -c pass`` never
  imports requests, protobuf or gRPC). The worker is one of the distribution's own threads
  (:mod:`crossbridge_otel._voice`): what the HTTP stack and the exporter log there never reaches the
  application's handlers, and nothing an exporter raises or logs can stop it; a failed batch is counted as
  dropped with the reason (:attr:`ExportQueue.problem`) and the next batch goes out;
- at shutdown waits for the worker at most until a deadline, then abandons what is left (the worker is a
  daemon thread, so it cannot hold the process) and counts it as dropped;
- after ``fork`` starts empty in the child with its own worker, and re-labels what the child exports with
  the child's resource (its own ``process.pid`` and ``service.instance.id``). Exporters are built (their
  modules imported: requests, protobuf, ...) under :func:`building`, which ``fork`` waits for (at most 2 s): a
  child forked while a worker was importing inherits that module's import lock held by a thread it does not
  have, and its own worker would block on it until the exit deadline (issue 11's "fork during an export").
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context, attach, set_value
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import TraceFlags

from crossbridge_otel import _voice

__all__ = [
    "ExportQueue", "QueueLogProcessor", "QueueSpanProcessor", "Relabel", "building", "suppress_instrumentation",
]

_SAMPLED = TraceFlags.SAMPLED
Exporter = Any  # a SpanExporter or LogRecordExporter; built lazily on the worker thread
Relabel = Callable[[Sequence[Any]], Sequence[Any]]


class _BuildLock:
    """Held while an exporter is built; ``fork`` waits for it (bounded), and the child gets a fresh one."""

    FORK_WAIT_S = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held_for_fork = False
        self._registered = False

    def register(self) -> None:
        if not self._registered:
            self._registered = True
            os.register_at_fork(before=self._before, after_in_parent=self._after, after_in_child=self._child)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            yield

    def _before(self) -> None:
        self._held_for_fork = self._lock.acquire(timeout=self.FORK_WAIT_S)

    def _after(self) -> None:
        if self._held_for_fork:
            self._held_for_fork = False
            self._lock.release()

    def _child(self) -> None:
        self._lock = threading.Lock()
        self._held_for_fork = False


_build_lock = _BuildLock()


def building() -> contextlib.AbstractContextManager[None]:
    """Build exporters inside this (see the module docstring)."""
    return _build_lock.held()


class ExportQueue:
    """A bounded queue drained in batches by one daemon worker thread."""

    def __init__(
        self,
        signal: str,
        exporter_factory: Callable[[], Exporter],
        *,
        max_queue_size: int = 4096,
        max_batch_size: int = 512,
        schedule_delay: float = 1.0,
        relabel: Relabel | None = None,
        destination: str = "",
        first_export: Callable[[], None] | None = None,
    ) -> None:
        self.signal = signal
        self.destination = destination or signal
        self._factory = exporter_factory
        self._max_queue = max_queue_size
        self._max_batch = max_batch_size
        # put wakes the worker when this many wait (at most half the queue, so a small queue is not full first)
        self._wake_at = max(1, min(max_batch_size, max_queue_size // 2))
        self._delay = schedule_delay
        self._relabel = relabel
        self._first_export = first_export  # run once on the worker before its first export (pipeline warm-up)
        self._exporter: Exporter | None = None
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        _build_lock.register()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._idle_flag = True  # mirrors _idle under _lock: put clears the Event only when it is set
        self._flush_wanted = False  # a flush waits: drain to the end, part batches included
        self._items: deque[Any] = deque()
        self._worker: threading.Thread | None = None
        self._closed = False
        self._exporter = None
        self._in_flight = 0
        self._abandoned = False
        self.exported = 0
        self.dropped = 0
        self.drop_reasons: dict[str, int] = {}
        self.problem: str | None = None  # why the last failed batch failed, in a few words

    # -- application side ---------------------------------------------------------------------------------

    def put(self, item: Any) -> None:
        # On the application's thread for every span: one uncontended lock, an append, a length check; the
        # Events are touched only when their state changes (not once per item).
        with self._lock:
            items = self._items
            size = len(items)
            if size >= self._max_queue or self._closed:
                self._drop(1, "after_shutdown" if self._closed else "queue_full")
                return
            items.append(item)
            if self._idle_flag:
                self._idle_flag = False
                self._idle.clear()
                if self._worker is None:
                    self._start_worker()
            if size + 1 == self._wake_at:
                self._wake.set()

    def __len__(self) -> int:
        """Items waiting (not those in flight)."""
        return len(self._items)

    def _drop(self, count: int, reason: str) -> None:
        self.dropped += count
        self.drop_reasons[reason] = self.drop_reasons.get(reason, 0) + count

    def _start_worker(self) -> None:
        self._worker = threading.Thread(target=self._run, name=f"crossbridge-otel-{self.signal}", daemon=True)
        self._worker.start()

    # -- worker side --------------------------------------------------------------------------------------

    def _run(self) -> None:
        _voice.mark_thread()
        # The exporter's own HTTP/gRPC calls must not become spans (requests/urllib3 instrumentation would
        # trace every export, and those spans would be exported in turn).
        suppress_instrumentation()
        while True:
            self._wake.wait(self._delay)
            self._wake.clear()
            try:
                self._drain()
            except BaseException as exc:  # (this thread must outlive anything an exporter does)
                self._fail(exc)
                self._lose_in_flight()
                if self._closed:
                    # Closing: drain the rest at once. Each failed pass took its batch out first, so this ends.
                    self._wake.set()
                    continue
            if self._closed:
                return

    def _lose_in_flight(self) -> None:
        # A drain that failed outside _export's own accounting: its batch is counted as dropped, never lost.
        with self._lock:
            if self._in_flight and not self._abandoned:
                self._drop(self._in_flight, "export_failed")
            self._in_flight = 0

    def _drain(self) -> None:
        first = True
        while True:
            with self._lock:
                if not self._items or self._abandoned:
                    self._idle_flag = True
                    self._flush_wanted = False
                    self._idle.set()
                    return
                if not (first or self._closed or self._flush_wanted) and len(self._items) < self._wake_at:
                    # what arrived during the last export waits for a full batch or the schedule delay: no
                    # trail of small requests after each full one
                    return
                first = False
                batch = [self._items.popleft() for _ in range(min(self._max_batch, len(self._items)))]
                self._in_flight = len(batch)
            sent = self._export(batch)
            with self._lock:
                # After shutdown abandoned the batch it was already counted as dropped: never twice.
                if not self._abandoned:
                    self.exported += sent
                    if sent < len(batch):
                        self._drop(len(batch) - sent, "export_failed")
                self._in_flight = 0

    def _export(self, batch: list[Any]) -> int:
        """How many items of ``batch`` went out: all of them, or after a failure what the exporter says it sent."""
        try:
            if self._exporter is None:
                with building():
                    self._exporter = self._factory()
            items = self._relabel(batch) if self._relabel is not None else batch
            _voice.take_problem()
            result = self._exporter.export(items)
            warm_up, self._first_export = self._first_export, None
            if warm_up is not None:
                warm_up()  # after this batch went out, not before it (it builds under building() itself)
            if getattr(result, "name", "SUCCESS") == "SUCCESS":
                return len(batch)
            self.problem = _voice.take_problem() or "the exporter reported a failure"
        except BaseException as exc:  # (even SystemExit from an exporter: the batch is counted)
            self._fail(exc)
        return _sent_before_failing(self._exporter, len(batch))

    def _fail(self, exc: BaseException) -> None:
        self.problem = f"{type(exc).__name__}: {_voice.one_line(exc, 160)}"
        _voice.say(logging.DEBUG, f"crossbridge-otel: exporting {self.signal} failed: {self.problem}", exc=exc)

    # -- exit ---------------------------------------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far was handed to the exporter, at most ``timeout`` seconds."""
        if self._worker is None:
            return True
        with self._lock:
            self._flush_wanted = True
        self._wake.set()
        return self._idle.wait(timeout)

    def close(self) -> None:
        """Take nothing more and start the last export now (the pipeline closes every queue, then waits)."""
        with self._lock:
            self._closed = True
        self._wake.set()

    def shutdown(self, deadline: float) -> None:
        """Flush until ``deadline`` (a ``time.monotonic()`` value), then abandon and count the rest."""
        self.close()
        worker = self._worker
        if worker is not None:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                # the export it is stuck in may have said why (a refused connection it keeps retrying)
                self.problem = self.problem or _voice.problem_of(worker)
                self.abandon("exit_deadline")
        exporter = self._exporter
        if exporter is not None:
            # The OTLP exporters' shutdown interrupts their retry sleep; run it off this thread, bounded.
            closer = threading.Thread(target=_quiet_shutdown, args=(exporter,), daemon=True)
            closer.start()
            closer.join(max(0.0, min(0.2, deadline - time.monotonic())))

    def abandon(self, reason: str) -> None:
        """Count everything still queued or in flight as dropped for ``reason``; the worker exports no more."""
        with self._lock:
            self._closed = True
            if self._abandoned:
                return
            left = len(self._items) + self._in_flight
            self._items.clear()
            self._abandoned = True
            if left:
                self._drop(left, reason)


def _sent_before_failing(exporter: Exporter | None, size: int) -> int:
    """What an exporter that sends a batch as several requests (export.encoding's) delivered before one failed."""
    try:
        sent = getattr(exporter, "sent_before_failing", 0)
    except Exception:  # (a property of an odd exporter raising: the batch is then counted as dropped, never lost)
        return 0
    return sent if type(sent) is int and 0 <= sent <= size else 0


def suppress_instrumentation() -> None:
    """Mark the calling thread's context so instrumentations skip it (for export threads only)."""
    attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))


def _quiet_shutdown(exporter: Exporter) -> None:
    _voice.mark_thread()
    try:
        exporter.shutdown()
    except Exception as exc:  # an exporter that cannot close is nothing the user can act on: DEBUG only
        _voice.say(logging.DEBUG, f"crossbridge-otel: exporter shutdown failed: {_voice.one_line(exc)}", exc=exc)


class QueueSpanProcessor(SpanProcessor):
    """Hands each sampled, ended span to an :class:`ExportQueue`: the span itself, or once the queue holds
    ``prepare_from`` items what ``prepare`` makes of it (our OTLP exporter's queue: the span already encoded,
    :func:`.encoding.prepare`; a queue that fills keeps bytes, not two dozen objects per span for the garbage
    collector to walk, while a queue that stays short costs the application's thread nothing more)."""

    def __init__(self, queue: ExportQueue, prepare: Callable[[ReadableSpan], Any] | None = None,
                 prepare_from: int = 0) -> None:
        self.queue = queue
        self._prepare = prepare
        self._prepare_from = prepare_from

    def on_end(self, span: ReadableSpan) -> None:
        # On the application's thread for every span, often with cold caches: as few Python calls as it takes
        # (the sampled bit read off the flags, the queue's length off its deque).
        context = span.context
        if context is not None and context.trace_flags & _SAMPLED:
            queue = self.queue
            prepare = self._prepare
            if prepare is not None and len(queue._items) >= self._prepare_from:
                queue.put(prepare(span))
            else:
                queue.put(span)

    def shutdown(self) -> None:
        self.queue.shutdown(time.monotonic() + 1.0)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.queue.flush(timeout_millis / 1000)


class QueueLogProcessor(LogRecordProcessor):
    """Hands each emitted log record to an :class:`ExportQueue` as a frozen, context-free copy."""

    def __init__(self, queue: ExportQueue) -> None:
        self.queue = queue

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        readable = ReadableLogRecord(
            log_record=_detached(record),
            resource=log_record.resource or Resource.get_empty(),
            instrumentation_scope=log_record.instrumentation_scope,
            limits=log_record.limits,
        )
        self.queue.put(readable)

    def shutdown(self) -> None:
        self.queue.shutdown(time.monotonic() + 1.0)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.queue.flush(timeout_millis / 1000)


def _detached(record: Any) -> Any:
    """A shallow copy of an API log record without its (possibly large) context."""
    clone = copy.copy(record)
    clone.context = Context()
    return clone
