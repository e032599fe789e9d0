"""Claim: with CROSSBRIDGE_OTEL_RETRY_WRITES=true, PostgresStorageBackend.write_events is retried only when the
attempt failed before COMMIT (exactly once then); killed at or after COMMIT it is never repeated (no duplicates).

The real CrossBridge backend writes to a real PostgreSQL; the connection is killed mid-transaction at the moment
that hurts (pgfaults: a stalled trigger + pg_terminate_backend, or a proxy that loses COMMIT's answer)."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.trace import StatusCode
from pgfaults import VICTIM, CommitCutter, Killer, install_stall_triggers

from crossbridge_otel.settings import load as load_settings

pytestmark = pytest.mark.postgres

PER_BATCH = 5
RETRY_WRITES = {"retry_writes": True, "retry_policies": "default=3:0.01:0.02", "retry_budget": 30.0}


@pytest.fixture
def profiling(telemetry):
    """psycopg2 and the profiling area instrumented with write retries on, as a user would switch them on."""
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor

    from crossbridge_otel.instrumentors.profiling import ProfilingInstrumentor

    psycopg2_inst = Psycopg2Instrumentor()
    psycopg2_inst.instrument(tracer_provider=telemetry.tracer_provider, skip_dep_check=True)
    inst = ProfilingInstrumentor()
    inst.instrument(settings=load_settings(environ={}, warn=False, **RETRY_WRITES), **telemetry.providers)
    yield telemetry
    inst.uninstrument()
    psycopg2_inst.uninstrument()


def _backend(host: str, port: int, db: str, user: str):
    from core.profiling.models import ProfileConfig, StorageBackendType
    from core.profiling.storage import PostgresStorageBackend

    config = ProfileConfig(enabled=True, backend=StorageBackendType.POSTGRES, postgres_host=host,
                           postgres_port=port, postgres_database=db, postgres_user=user, postgres_password="")
    backend = PostgresStorageBackend(config)
    assert backend.initialize() is True
    return backend


def _batch(run_id: str):
    from core.profiling.models import EventType, PerformanceEvent

    ids = [f"t{i}" for i in range(PER_BATCH)]
    ids[2] = VICTIM  # the third INSERT of the transaction is where the fault lands
    return [PerformanceEvent.create(run_id, test_id, EventType.TEST_END, "pytest", duration_ms=5, status="passed")
            for test_id in ids]


def _stored(server, db: str, run_id: str) -> int:
    conn = server.connect(dbname=db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM profiling.tests WHERE run_id = %s", (run_id,))
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def _retries(span) -> list[dict]:
    return [dict(e.attributes) for e in span.events if e.name == "retry"]


def _write_span(telemetry):
    (span,) = telemetry.spans("profiling.storage.write")
    return span


def test_killed_before_commit_is_retried_and_stored_exactly_once(profiling, postgres_server, postgres_db):
    """A backend killed during the batch's third INSERT: one retry on a fresh connection, every row stored once."""
    backend = _backend(postgres_server.host, postgres_server.port, postgres_db, postgres_server.user)
    install_stall_triggers(postgres_server, postgres_db, "insert")
    killer = Killer(postgres_server, postgres_db)
    killer.start()
    run_id = str(uuid.uuid4())
    try:
        assert backend.write_events(_batch(run_id)) is True
    finally:
        killer.join()  # bounded by the killer's own hang guard
        backend.shutdown()
    assert len(killer.killed) == 1 and "INSERT" in (killer.query or "")
    assert _stored(postgres_server, postgres_db, run_id) == PER_BATCH
    span = _write_span(profiling)
    (event,) = _retries(span)
    assert event["retry.will_retry"] is True and event["error.type"].startswith("psycopg2.")
    assert span.attributes["retry.attempts"] == 2
    assert span.status.status_code == StatusCode.UNSET


def test_killed_during_commit_is_reported_never_retried(profiling, postgres_server, postgres_db):
    """A backend killed inside COMMIT (a deferred trigger): the write is not repeated; the span says it failed."""
    backend = _backend(postgres_server.host, postgres_server.port, postgres_db, postgres_server.user)
    install_stall_triggers(postgres_server, postgres_db, "commit")
    killer = Killer(postgres_server, postgres_db)
    killer.start()
    run_id = str(uuid.uuid4())
    try:
        assert backend.write_events(_batch(run_id)) is False
    finally:
        killer.join()  # bounded by the killer's own hang guard
        backend.shutdown()
    assert len(killer.killed) == 1 and "COMMIT" in (killer.query or "").upper()
    assert _stored(postgres_server, postgres_db, run_id) == 0  # the server rolled the dying commit back
    span = _write_span(profiling)
    (event,) = _retries(span)
    assert event["retry.will_retry"] is False and event["error.type"].startswith("psycopg2.")
    assert span.attributes["retry.attempts"] == 1
    assert span.status.status_code == StatusCode.ERROR


def test_connection_lost_after_commit_is_never_retried_no_duplicate(profiling, postgres_server, postgres_db):
    """COMMIT applied but its answer lost with the connection: no second attempt, so no row is stored twice."""
    cutter = CommitCutter(postgres_server.host, postgres_server.port)
    backend = _backend("127.0.0.1", cutter.port, postgres_db, postgres_server.user)
    run_id = str(uuid.uuid4())
    cutter.arm()
    try:
        result = backend.write_events(_batch(run_id))
    finally:
        backend.shutdown()
        cutter.close()
    assert cutter.cut == 1
    assert _stored(postgres_server, postgres_db, run_id) == PER_BATCH  # committed once, never again
    assert result is False  # CrossBridge saw the commit fail
    span = _write_span(profiling)
    (event,) = _retries(span)
    assert event["retry.will_retry"] is False
    assert span.attributes["retry.attempts"] == 1
    assert span.status.status_code == StatusCode.ERROR
