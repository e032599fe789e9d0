"""PostgresStorageBackend against a real PostgreSQL server, with the psycopg2 instrumentation underneath."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.trace import StatusCode

from crossbridge_otel.instrumentors.profiling import ProfilingInstrumentor
from crossbridge_otel.settings import load as load_settings

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_profiling(telemetry):
    """ProfilingInstrumentor plus the contrib psycopg2 instrumentation (parameters not captured)."""
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor

    psycopg2_inst = Psycopg2Instrumentor()
    psycopg2_inst.instrument(tracer_provider=telemetry.tracer_provider, skip_dep_check=True)
    inst = ProfilingInstrumentor()
    inst.instrument(settings=load_settings(environ={}), **telemetry.providers)
    yield telemetry
    inst.uninstrument()
    psycopg2_inst.uninstrument()


@pytest.fixture
def pg_backend(postgres_server, postgres_db):  # noqa: F811
    """A PostgresStorageBackend configured for the throwaway database; shut down afterwards."""
    from core.profiling.models import ProfileConfig, StorageBackendType
    from core.profiling.storage import PostgresStorageBackend

    config = ProfileConfig(enabled=True, backend=StorageBackendType.POSTGRES, postgres_host=postgres_server.host,
                           postgres_port=postgres_server.port, postgres_database=postgres_db,
                           postgres_user=postgres_server.user)
    backend = PostgresStorageBackend(config)
    yield backend
    backend.shutdown()


def _db_children(telemetry, parent):
    return [s for s in telemetry.spans() if s.parent is not None and s.parent.span_id == parent.context.span_id
            and "db.system" in "".join(s.attributes)]


def _statement(span):
    for key in ("db.query.text", "db.statement"):
        if key in span.attributes:
            return span.attributes[key]
    return ""


def _event(run_id: str, test_id: str):
    from core.profiling.models import EventType, PerformanceEvent

    return PerformanceEvent.create(run_id=run_id, test_id=test_id, event_type=EventType.TEST_END,
                                   framework="pytest", duration_ms=12.0, status="passed")


def test_initialize_creates_schema_with_psycopg2_children(
    pg_profiling, pg_backend, postgres_server, postgres_db  # noqa: F811
):
    """initialize on a live server is OK and its DDL statements are psycopg2 child spans."""
    assert pg_backend.initialize() is True
    span = pg_profiling.span("profiling.storage.initialize")
    assert span.status.status_code == StatusCode.UNSET
    children = _db_children(pg_profiling, span)
    statements = [_statement(c) for c in children]
    assert any("CREATE TABLE IF NOT EXISTS profiling.tests" in s for s in statements), statements
    assert all(c.context.trace_id == span.context.trace_id for c in children)
    conn = postgres_server.connect(dbname=postgres_db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'profiling'")
            assert cur.fetchone()[0] == 6
    finally:
        conn.close()


def test_write_events_inserts_without_literal_values(pg_profiling, pg_backend):
    """write_events INSERTs appear under the write span as parameterized SQL, no literal values captured."""
    assert pg_backend.initialize() is True
    run_id, test_id = str(uuid.uuid4()), "tests/test_login.py::test_secret_value_123"
    assert pg_backend.write_events([_event(run_id, test_id)]) is True
    write = pg_profiling.span("profiling.storage.write")
    assert write.status.status_code == StatusCode.UNSET
    assert write.attributes["crossbridge.profiling.events"] == 1
    inserts = [c for c in _db_children(pg_profiling, write) if "INSERT" in _statement(c)]
    assert len(inserts) == 1
    statement = _statement(inserts[0])
    assert "profiling.tests" in statement and "%s" in statement
    for span in pg_profiling.spans():
        for value in span.attributes.values():
            assert test_id not in str(value) and run_id not in str(value)


def test_write_events_bad_run_id_is_returned_false(pg_profiling, pg_backend):
    """A non-UUID run_id makes write_events return False: ERROR with PostgreSQL's error text."""
    assert pg_backend.initialize() is True
    assert pg_backend.write_events([_event("not-a-uuid", "t")]) is False
    write = pg_profiling.span("profiling.storage.write")
    assert write.attributes["error.type"] == "returned_false"
    assert "invalid input syntax for type uuid" in write.status.description
    failed = [c for c in _db_children(pg_profiling, write) if c.status.status_code == StatusCode.ERROR]
    assert failed, "the failing INSERT is a psycopg2 child span marked ERROR"
