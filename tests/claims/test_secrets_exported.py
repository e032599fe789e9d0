"""Claim: credentials that really appear in a failing input never leave the process (README "Never exported").

Each test first shows the secret is in the real failure (the server's or the library's own text), then scans
everything exported: span names, attributes, status, events (``exception``, ``retry``) and log records."""

from __future__ import annotations

import pytest

from crossbridge_otel import libraries
from crossbridge_otel.settings import load as load_settings

pytestmark = pytest.mark.postgres

SECRET = "hunter2-7f3a"


def _leaks(telemetry) -> list[str]:
    """Where the secret is in what was exported: ``<span or log>: <attribute>``."""
    found = []
    for s in telemetry.spans():
        values = {"name": s.name, "status": s.status.description, **s.attributes}
        values.update({f"{e.name} event {k}": v for e in s.events for k, v in e.attributes.items()})
        found += [f"{s.name}: {k}" for k, v in values.items() if SECRET in str(v)]
    for record in telemetry.logs():
        values = {"body": record.body, **(record.attributes or {})}
        found += [f"log: {k}" for k, v in values.items() if SECRET in str(v)]
    return found


def _exported(telemetry) -> str:
    parts = []
    for s in telemetry.spans():
        parts += [s.name, str(s.status.description)]
        parts += [f"{k}={v}" for k, v in s.attributes.items()]
        parts += [f"{e.name} {k}={v}" for e in s.events for k, v in e.attributes.items()]
    for record in telemetry.logs():
        parts += [str(record.body)] + [f"{k}={v}" for k, v in (record.attributes or {}).items()]
    return "\n".join(parts)


@pytest.fixture
def profiling(telemetry):
    """psycopg2 (parameter capture as configured), the log bridge and the profiling area, retry on."""
    from crossbridge_otel.instrumentors.logging import LoggingInstrumentor
    from crossbridge_otel.instrumentors.profiling import ProfilingInstrumentor

    settings = load_settings(environ={}, warn=False, retry_policies="default=2:0.01:0.02")
    done = libraries.instrument(["psycopg2"], tracer_provider=telemetry.tracer_provider)
    insts = [LoggingInstrumentor(), ProfilingInstrumentor()]
    for inst in insts:
        inst.instrument(settings=settings, **telemetry.providers)
    yield telemetry
    for inst in insts:
        inst.uninstrument()
    libraries.uninstrument(done)


def _config(server, **overrides):
    from core.profiling.models import ProfileConfig, StorageBackendType

    values = {"postgres_host": server.host, "postgres_port": server.port, "postgres_user": server.user,
              "postgres_database": "postgres", **overrides}
    return ProfileConfig(enabled=True, backend=StorageBackendType.POSTGRES, **values)


@pytest.mark.parametrize("field, value, masked", [
    ("postgres_database", f"postgresql://app:{SECRET}@db.internal:5432/cb", "postgresql://app:***@"),
    ("postgres_user", f"app password={SECRET}", "password=***"),
])
def test_password_the_server_echoes_never_leaves(profiling, postgres_server, field, value, masked):
    """A DSN value PostgreSQL echoes in its FATAL error: retry event, exception event, status and log are redacted."""
    import psycopg2
    from core.profiling.storage import PostgresStorageBackend

    config = _config(postgres_server, **{field: value})
    with pytest.raises(psycopg2.OperationalError, match=SECRET):  # the real failure carries the secret
        psycopg2.connect(host=config.postgres_host, port=config.postgres_port, user=config.postgres_user,
                         dbname=config.postgres_database)
    assert PostgresStorageBackend(config).initialize() is False
    span = profiling.span("profiling.storage.initialize")
    retry = [e for e in span.events if e.name == "retry"]
    exception = [e for e in span.events if e.name == "exception"]
    assert retry and exception  # the retry layer saw the failure and recorded it
    assert masked in retry[-1].attributes["exception.message"]
    assert masked in exception[-1].attributes["exception.message"]
    assert any(masked in str(r.body) for r in profiling.logs())  # CrossBridge's own ERROR line, bridged
    assert _leaks(profiling) == []


def test_stacktrace_of_the_swallowed_exception_is_redacted(profiling, postgres_server):
    """The retry layer's exception event for an echoed password: its exception.stacktrace is redacted too."""
    from core.profiling.storage import PostgresStorageBackend

    config = _config(postgres_server, postgres_database=f"postgresql://app:{SECRET}@db.internal:5432/cb")
    assert PostgresStorageBackend(config).initialize() is False
    exception = [e for e in profiling.span("profiling.storage.initialize").events if e.name == "exception"]
    assert "postgresql://app:***@" in exception[-1].attributes["exception.stacktrace"]  # the trace, masked
    assert _leaks(profiling) == []


@pytest.fixture
def capturing(telemetry, monkeypatch):
    """psycopg2 instrumented as the distribution does it, with CROSSBRIDGE_OTEL_CAPTURE_SQL_PARAMETERS=true."""
    monkeypatch.setenv("CROSSBRIDGE_OTEL_CAPTURE_SQL_PARAMETERS", "true")
    done = libraries.instrument(["psycopg2"], tracer_provider=telemetry.tracer_provider)
    yield telemetry
    libraries.uninstrument(done)


def _attribute(telemetry, key: str) -> list[str]:
    return [str(s.attributes[key]) for s in telemetry.spans() if key in s.attributes]


def test_captured_sql_parameters_are_redacted(capturing, postgres_server, postgres_db):
    """CROSSBRIDGE_OTEL_CAPTURE_SQL_PARAMETERS=true with a secret-looking value: the value is captured, redacted."""
    from core.profiling.models import EventType, PerformanceEvent
    from core.profiling.storage import PostgresStorageBackend

    from crossbridge_otel.instrumentors.profiling import ProfilingInstrumentor

    inst = ProfilingInstrumentor()
    inst.instrument(settings=load_settings(environ={}, warn=False), **capturing.providers)
    try:
        backend = PostgresStorageBackend(_config(postgres_server, postgres_database=postgres_db))
        assert backend.initialize() is True
        event = PerformanceEvent.create("00000000-0000-0000-0000-000000000001", f"login api_key={SECRET}",
                                        EventType.TEST_END, "pytest", duration_ms=3, status="passed")
        assert backend.write_events([event]) is True
        backend.shutdown()
    finally:
        inst.uninstrument()
    params = _attribute(capturing, "db.statement.parameters")
    assert any("login api_key=***" in p for p in params), params  # captured (capture is on), and masked
    assert SECRET not in _exported(capturing), _leaks(capturing)


def test_captured_named_sql_parameter_is_redacted(capturing, postgres_server, postgres_db):
    """A credential bound by name (``%(password)s``): psycopg2 receives it, the captured parameters mask it."""
    import psycopg2

    conn = psycopg2.connect(**{**postgres_server.connect_kwargs(), "dbname": postgres_db})
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT %(password)s::text", {"password": SECRET})
            assert cur.fetchone() == (SECRET,)  # the database got the real value: only the telemetry is masked
    finally:
        conn.close()
    assert _attribute(capturing, "db.statement.parameters") == ["{'password': '***'}"]
    assert SECRET not in _exported(capturing), _leaks(capturing)


def test_password_literal_in_sql_text_is_redacted(capturing, postgres_server, postgres_db):
    """A literal password inside the statement (CREATE ROLE ... PASSWORD '...'): db.statement masks it."""
    import psycopg2

    role = f"claims_{postgres_db}"
    conn = psycopg2.connect(**{**postgres_server.connect_kwargs(), "dbname": postgres_db})
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{SECRET}'")
            cur.execute(f"DROP ROLE {role}")
    finally:
        conn.close()
    assert f"CREATE ROLE {role} LOGIN PASSWORD '***'" in _attribute(capturing, "db.statement")
    assert SECRET not in _exported(capturing), _leaks(capturing)
