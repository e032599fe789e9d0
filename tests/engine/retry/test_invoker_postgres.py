"""Proof against a real PostgreSQL that fails: profiling writes through the instrumented Postgres backend
while the server is stopped and restarted, or its connections are killed."""

from __future__ import annotations

import threading
import time
import types
import uuid

import pytest
from opentelemetry.trace import StatusCode
from support.postgres import stored_test_ids
from support.retry import retry_events
from support.waiting import wait_until

from crossbridge_otel.retry import invoker
from crossbridge_otel.settings import load as load_settings

pytestmark = pytest.mark.postgres

BATCHES, PER_BATCH, FAULTY = 6, 5, 3
# Enough attempts (and budget) to outlast a server restart; capped full jitter keeps each sleep <= 0.4 s.
RETRYING = {"retry_writes": True, "retry_policies": "default=15:0.05:0.4", "retry_budget": 30.0}


@pytest.fixture
def profiling(telemetry):
    """Instrument psycopg2 and the profiling area with the test providers; returns an instrument(**settings)."""
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor

    from crossbridge_otel.instrumentors.profiling import ProfilingInstrumentor

    psycopg2_inst = Psycopg2Instrumentor()
    psycopg2_inst.instrument(tracer_provider=telemetry.tracer_provider, skip_dep_check=True)
    inst = ProfilingInstrumentor()

    def apply(**settings):
        inst.instrument(settings=load_settings(environ={}, warn=False, **settings), **telemetry.providers)

    yield apply
    inst.uninstrument()
    psycopg2_inst.uninstrument()


@pytest.fixture
def backend_for(postgres_server, postgres_db):
    """A factory of PostgresStorageBackend on the test database; every backend is shut down afterwards."""
    made = []

    def make():
        from core.profiling.models import ProfileConfig, StorageBackendType
        from core.profiling.storage import PostgresStorageBackend

        config = ProfileConfig(enabled=True, backend=StorageBackendType.POSTGRES, postgres_host=postgres_server.host,
                               postgres_port=postgres_server.port, postgres_database=postgres_db,
                               postgres_user=postgres_server.user, postgres_password="")
        made.append(PostgresStorageBackend(config))
        return made[-1]

    yield make
    for backend in made:
        backend.shutdown()


def _batches(run_id: str):
    from core.profiling.models import EventType, PerformanceEvent

    return [[PerformanceEvent.create(run_id, f"t{b}-{i}", EventType.TEST_END, "pytest", duration_ms=10 + i,
                                     status="passed") for i in range(PER_BATCH)] for b in range(BATCHES)]


@pytest.fixture
def retry_waits(monkeypatch):
    """The retry layer's waits (really slept), recorded: one per failed attempt it retries."""
    real, seen = time.sleep, []

    def sleep(seconds: float) -> None:
        seen.append(seconds)
        real(seconds)

    monkeypatch.setattr(invoker, "time", types.SimpleNamespace(sleep=sleep, monotonic=time.monotonic))
    return seen


def _restart_later(server, retry_waits: list[float], failures: int) -> threading.Thread:
    """Start ``server`` again once the retry layer has waited after ``failures`` failed attempts (not after a
    fixed time, which a slow machine could spend before the first attempt)."""

    def restart() -> None:
        try:
            wait_until(lambda: len(retry_waits) >= failures, f"{failures} failed attempts were retried")
        finally:
            server.start()

    thread = threading.Thread(target=restart, daemon=True)
    thread.start()
    return thread


def _run(backend, batches, fault) -> list[bool]:
    """Write every batch; ``fault()`` runs right before the faulty batch."""
    results = []
    for index, batch in enumerate(batches):
        if index == FAULTY:
            fault()
        results.append(backend.write_events(batch))
    return results


def _children(telemetry, span, status=None):
    return [s for s in telemetry.spans() if s.parent is not None and s.parent.span_id == span.context.span_id
            and s.name.startswith("INSERT") and (status is None or s.status.status_code == status)]


def _check_exactly_once(postgres_server, db, run_id, batches):
    expected = sorted(e.test_id for batch in batches for e in batch)
    assert stored_test_ids(postgres_server, db, run_id) == expected  # every accepted event, none twice


def test_server_restart_mid_run_loses_and_duplicates_nothing(profiling, backend_for, postgres_server,
                                                            postgres_db, telemetry, retry_waits):
    """Stopping and restarting PostgreSQL during a run: every event stored exactly once, retries on one span."""
    profiling(**RETRYING)
    backend = backend_for()
    assert backend.initialize() is True
    run_id, restarted = str(uuid.uuid4()), []

    def fault():
        postgres_server.stop()
        # back after the dead pooled connection and one refused connect
        restarted.append(_restart_later(postgres_server, retry_waits, 2))

    batches = _batches(run_id)
    assert _run(backend, batches, fault) == [True] * BATCHES
    restarted[0].join(30)
    _check_exactly_once(postgres_server, postgres_db, run_id, batches)

    writes = telemetry.spans("profiling.storage.write")
    assert len(writes) == BATCHES
    faulty = writes[FAULTY]
    events = retry_events(faulty)
    assert len(events) >= 2  # the dead pooled connection, then refused connects while the server is down
    assert all(e["retry.will_retry"] for e in events)
    assert all(e["error.type"].startswith("psycopg2.") for e in events)
    assert any("refused" in e["exception.message"].lower() for e in events)
    assert faulty.attributes["retry.attempts"] == len(events) + 1
    assert faulty.status.status_code != StatusCode.ERROR
    assert [len(retry_events(s)) for i, s in enumerate(writes) if i != FAULTY] == [0] * (BATCHES - 1)
    # psycopg2 child spans: the first attempt's INSERT failed, the last attempt's INSERTs all succeeded.
    assert len(_children(telemetry, faulty, StatusCode.ERROR)) >= 1
    assert len(_children(telemetry, faulty, StatusCode.UNSET)) == PER_BATCH


def test_killed_connections_are_retried_once_on_a_fresh_connection(profiling, backend_for, postgres_server,
                                                                   postgres_db, telemetry):
    """pg_terminate_backend on the pooled connection: the batch is retried once and stored exactly once."""
    profiling(**RETRYING)
    backend = backend_for()
    assert backend.initialize() is True
    run_id = str(uuid.uuid4())
    batches = _batches(run_id)
    assert _run(backend, batches, lambda: postgres_server.kill_backends(dbname=postgres_db)) == [True] * BATCHES
    _check_exactly_once(postgres_server, postgres_db, run_id, batches)

    faulty = telemetry.spans("profiling.storage.write")[FAULTY]
    (event,) = retry_events(faulty)
    assert event["retry.attempt"] == 1 and event["retry.will_retry"] is True
    assert event["error.type"].startswith("psycopg2.")
    assert faulty.attributes["retry.attempts"] == 2
    assert len(_children(telemetry, faulty, StatusCode.ERROR)) == 1
    assert len(_children(telemetry, faulty, StatusCode.UNSET)) == PER_BATCH


def test_without_write_retries_the_lost_batch_is_an_error_span_with_its_size(profiling, backend_for,
                                                                             postgres_server, postgres_db,
                                                                             telemetry):
    """Default settings: the killed batch is not retried; its span is ERROR and says how many events it held."""
    profiling()
    backend = backend_for()
    assert backend.initialize() is True
    run_id = str(uuid.uuid4())
    batches = _batches(run_id)
    results = _run(backend, batches, lambda: postgres_server.kill_backends(dbname=postgres_db))
    assert results == [i != FAULTY for i in range(BATCHES)]
    stored = stored_test_ids(postgres_server, postgres_db, run_id)
    assert len(stored) == (BATCHES - 1) * PER_BATCH
    lost = telemetry.spans("profiling.storage.write")[FAULTY]
    assert lost.status.status_code == StatusCode.ERROR
    assert lost.attributes["error.type"] == "returned_false"
    assert lost.attributes["crossbridge.profiling.events"] == PER_BATCH
    assert retry_events(lost) == []


def test_initialize_waits_for_a_restarting_server(profiling, backend_for, postgres_server, telemetry, retry_waits):
    """initialize (idempotent, retried under quick) succeeds once the server is back; each refusal is an event."""
    profiling(retry_policies="quick=15:0.05:0.4", retry_budget=30.0)
    backend = backend_for()
    postgres_server.stop()
    restart = _restart_later(postgres_server, retry_waits, 2)  # back after two refused connects
    try:
        assert backend.initialize() is True
    finally:
        restart.join(30)
    span = telemetry.span("profiling.storage.initialize")
    events = retry_events(span)
    # refused while the server is down; "starting up" if an attempt lands while it is restarting
    messages = [e["exception.message"].lower() for e in events]
    assert any("refused" in m for m in messages)
    assert all("refused" in m or "starting up" in m for m in messages), messages
    assert span.attributes["retry.attempts"] == len(events) + 1
    assert span.status.status_code != StatusCode.ERROR
