"""crossbridge_otel.libraries: the DB-API spans' SQL redaction (statements, captured parameters), on real sqlite3."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation import dbapi

from crossbridge_otel import libraries

SECRET = "hunter2-9c1e"


@pytest.fixture
def sqlite(telemetry) -> Iterator[sqlite3.Connection]:
    """An in-memory sqlite3 connection opened after the distribution instrumented sqlite3."""
    done = libraries.instrument(["sqlite3"], tracer_provider=telemetry.tracer_provider)
    conn = sqlite3.connect(":memory:")
    yield conn
    conn.close()
    libraries.uninstrument(done)


def _statements(telemetry) -> list[str]:
    return [str(s.attributes["db.statement"]) for s in telemetry.spans() if "db.statement" in s.attributes]


def test_credential_literal_in_a_statement_is_redacted(sqlite, telemetry):
    """A quoted ``password=...`` literal in the SQL text: the query gets it, db.statement has ``***``."""
    cursor = sqlite.cursor()
    assert cursor.execute(f"SELECT 'password={SECRET}'").fetchone() == (f"password={SECRET}",)
    assert _statements(telemetry) == ["SELECT 'password=***'"]


def test_statement_without_a_literal_is_exported_as_written(sqlite, telemetry):
    """Placeholders only: the statement is not scanned, so ``token = ?`` keeps its placeholder."""
    sqlite.execute("CREATE TABLE s (token TEXT)")
    sqlite.execute("SELECT count(*) FROM s WHERE token = ?", (SECRET,))
    assert "SELECT count(*) FROM s WHERE token = ?" in _statements(telemetry)


def test_uninstrument_removes_the_redaction_after_the_last_user(telemetry):
    """psycopg2 and sqlite3 share the patch: it stays until both are uninstrumented, then the original is back."""
    original = dbapi.CursorTracer.traced_execution
    first = libraries.instrument(["sqlite3"], tracer_provider=telemetry.tracer_provider)
    second = libraries.instrument(["psycopg2"], tracer_provider=telemetry.tracer_provider)
    assert dbapi.CursorTracer.traced_execution is not original
    libraries.uninstrument(first)
    assert dbapi.CursorTracer.traced_execution is not original
    libraries.uninstrument(second)
    assert dbapi.CursorTracer.traced_execution is original


def test_parameter_capture_is_off_when_it_could_not_be_redacted(monkeypatch):
    """Capture requested but the integration lacks the method redaction hooks into: capture stays off."""
    monkeypatch.setenv("CROSSBRIDGE_OTEL_CAPTURE_SQL_PARAMETERS", "true")
    assert libraries.instrument_kwargs("psycopg2") == {"capture_parameters": True}
    monkeypatch.delattr(dbapi.CursorTracer, "traced_execution")
    assert libraries.instrument_kwargs("psycopg2") == {"capture_parameters": False}


def test_a_failing_redaction_exports_masked_parameters(telemetry, monkeypatch):
    """Production mode, redact() raising: the captured parameters are replaced by ``***``, never kept raw."""
    monkeypatch.setenv("CROSSBRIDGE_OTEL_STRICT", "false")

    def broken(text: str) -> str:
        raise RuntimeError("redaction broke")

    monkeypatch.setattr(libraries, "redact", broken)
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("SELECT") as span:
        span.set_attribute("db.statement.parameters", f"('{SECRET}',)")
        libraries._redact_current_sql_span()
    (exported,) = telemetry.spans("SELECT")
    assert exported.attributes["db.statement.parameters"] == "***"
