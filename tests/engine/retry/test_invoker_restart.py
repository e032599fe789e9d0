"""Issue 11 item 5: with write retry on, a profiling batch rides out a real PostgreSQL restart on CrossBridge's
flush thread (``MetricsCollector._background_flush``), exactly once, while application threads never wait long."""

from __future__ import annotations

import sys
import threading
import time
import types
import uuid

import pytest
from opentelemetry.trace import StatusCode
from support.postgres import postgres_db, postgres_server, stored_test_ids  # noqa: F401  (fixtures)
from support.retry import retry_events

from crossbridge_otel.retry import invoker
from crossbridge_otel.retry.policies import OWN_POLICIES, capped_delay, policy_named
from crossbridge_otel.settings import load as load_settings

pytestmark = pytest.mark.postgres

N = 20
OUTAGE_AFTER_FIRST_RETRY = 1.5  # the server comes back this long after the first failed attempt, plus its start-up
WRITE = "profiling.storage.write"


@pytest.fixture
def profiling(telemetry):
    """The profiling area instrumented with write retries on and every other setting at its default."""
    from crossbridge_otel.instrumentors.profiling import ProfilingInstrumentor

    inst = ProfilingInstrumentor()
    inst.instrument(settings=load_settings(environ={}, warn=False, retry_writes=True), **telemetry.providers)
    yield telemetry
    inst.uninstrument()


@pytest.fixture
def sleeps(monkeypatch):
    """Every ``time.sleep`` of the retry layer (or backoff): (thread, seconds); ``first`` is set by the first one."""
    real = time.sleep
    seen: list[tuple[threading.Thread, float]] = []
    first = threading.Event()

    def sleep(seconds: float) -> None:
        if sys._getframe(1).f_globals.get("__name__", "").startswith(("crossbridge_otel.", "backoff.")):
            seen.append((threading.current_thread(), seconds))
            first.set()
        real(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    sleep.first = first  # type: ignore[attr-defined]
    return sleep, seen


class FakeClock:
    """The retry layer's clock and sleep (``invoker._monotonic``, ``invoker.time.sleep``): a sleep advances the clock
    by its seconds and takes no real time; ``hold`` (when set) runs first, on the sleeping thread."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.seen: list[tuple[threading.Thread, float]] = []
        self.first = threading.Event()
        self.hold = None

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.seen.append((threading.current_thread(), seconds))
        self.first.set()
        if self.hold is not None:
            self.hold()
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    """The retry invoker's waits on a :class:`FakeClock`: what it would wait is recorded, not slept."""
    fake = FakeClock()
    monkeypatch.setattr(invoker, "_monotonic", fake.monotonic)
    monkeypatch.setattr(invoker, "time", types.SimpleNamespace(sleep=fake.sleep, monotonic=fake.monotonic))
    return fake


@pytest.fixture
def collector_for(postgres_server, postgres_db):  # noqa: F811
    """A factory of real MetricsCollectors on a PostgresStorageBackend of the test database; all shut down after."""
    made = []

    def make():
        from core.profiling.collector import MetricsCollector
        from core.profiling.models import ProfileConfig, StorageBackendType
        from core.profiling.storage import PostgresStorageBackend

        config = ProfileConfig(enabled=True, backend=StorageBackendType.POSTGRES, postgres_host=postgres_server.host,
                               postgres_port=postgres_server.port, postgres_database=postgres_db,
                               postgres_user=postgres_server.user, postgres_password="")
        made.append(MetricsCollector(config, PostgresStorageBackend(config)))
        return made[-1]

    yield make
    if not postgres_server.running:
        postgres_server.start()
    for collector in made:
        collector.shutdown()


def _record(collector, count: int = N) -> None:
    for i in range(count):
        collector.record_test_end(f"t{i:02d}", "pytest", 10 + i, "passed")


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        threading.Event().wait(0.05)  # not time.sleep: that one is being recorded
    return predicate()


def test_restart_policy_waits_grow_with_a_floor_and_keep_their_budget_when_overridden():
    """``restart``: equal jitter 0.25-0.5, 0.5-1, 1-2, 2-4, 2.5-5 s within 30 s; an override keeps both."""
    restart = OWN_POLICIES["restart"]
    assert [capped_delay(restart, n, uniform=0.0) for n in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 2.5, 2.5]
    assert [capped_delay(restart, n, uniform=1.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert (restart.budget, policy_named("restart")) == (30.0, restart)
    overridden = policy_named("restart", "restart=9:1:4")
    assert (overridden.attempts, overridden.cap, overridden.jitter, overridden.budget) == (9, 4.0, "equal", 30.0)


def test_batch_rides_out_a_restart_on_the_flush_thread_exactly_once(profiling, collector_for, sleeps,
                                                                    postgres_server, postgres_db):
    """Server stopped mid-write, back ~1.5 s after the first failed attempt: all N rows once, waits on the flush
    thread."""
    sleep, seen = sleeps
    collector = collector_for()
    assert collector.start() is True
    postgres_server.stop()

    def restart_later():
        if sleep.first.wait(10):
            threading.Event().wait(OUTAGE_AFTER_FIRST_RETRY)
        postgres_server.start()

    restarter = threading.Thread(target=restart_later, name="pg-restart", daemon=True)
    restarter.start()
    _record(collector)
    written = _wait_for(lambda: collector.events_written == N, 35.0)
    restarter.join(30)
    assert written, f"events_written={collector.events_written} of {N}"
    assert stored_test_ids(postgres_server, postgres_db, collector.current_run_id) == [f"t{i:02d}" for i in range(N)]

    writes = profiling.spans(WRITE)
    faulty = [s for s in writes if retry_events(s)]
    assert len(faulty) == 1
    events = retry_events(faulty[0])
    assert len(events) >= 2  # the dead pooled connection, then refused connects while the server is down
    assert all(e["retry.will_retry"] and e["retry.max_attempts"] == 20 for e in events)
    assert faulty[0].attributes["retry.attempts"] == len(events) + 1
    assert faulty[0].status.status_code != StatusCode.ERROR
    assert {thread for thread, _ in seen} == {collector.worker_thread}
    assert sum(seconds for _, seconds in seen) >= OUTAGE_AFTER_FIRST_RETRY


def test_application_thread_flush_gets_no_long_wait(profiling, collector_for, clock, postgres_server):
    """``MetricsCollector.flush()`` on the application's thread, database down: ``default`` (<= 1.5 s of waits)."""
    from core.profiling.models import EventType, PerformanceEvent

    collector = collector_for()
    assert collector.storage.initialize() is True
    for i in range(N):  # events still queued at exit, as flush() finds them
        collector.queue.put_nowait(PerformanceEvent.create(str(uuid.uuid4()), f"t{i}", EventType.TEST_END, "pytest",
                                                           duration_ms=5, status="passed"))
    postgres_server.stop()
    collector.flush()

    assert collector.events_written == 0
    events = retry_events(profiling.span(WRITE))
    assert [e["retry.max_attempts"] for e in events] == [3, 3, 3] and not events[-1]["retry.will_retry"]
    assert {thread for thread, _ in clock.seen} == {threading.main_thread()}
    assert sum(seconds for _, seconds in clock.seen) <= 1.5


def test_shutdown_ends_the_flush_threads_wait(profiling, collector_for, clock, postgres_server):
    """Collector shut down while its flush thread waits for the database: the wait ends, one last attempt, no more."""
    collector = collector_for()
    # the clock stands still while the collector runs: no wait can end on its own, only the stop can end it
    clock.hold = lambda: _wait_for(lambda: not collector.running, 30)
    assert collector.start() is True
    postgres_server.stop()
    _record(collector)
    assert clock.first.wait(10)  # the flush thread is in its retry wait
    collector.shutdown()

    assert not collector.worker_thread.is_alive()  # the join ended because the worker did, not at its timeout
    write = profiling.span(WRITE)
    events = retry_events(write)
    assert [e["retry.will_retry"] for e in events] == [True, False] and write.status.status_code == StatusCode.ERROR
    ((thread, waited),) = clock.seen  # one slice of the first wait, ended by the stop: no wait after it
    assert thread is collector.worker_thread and waited < events[0]["retry.delay_s"]
