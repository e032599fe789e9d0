"""Health checks with bounded timeouts: real PostgreSQL, a local InfluxDB-like /health, the coverage SQLite."""

from __future__ import annotations

import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crossbridge_otel.doctor.health import run_checks
from crossbridge_otel.settings import load as load_settings


def _settings(**values):
    return load_settings(environ={}, warn=False, health_timeout=1.0, **values)


@pytest.fixture
def health_server():
    """A local /health endpoint answering the status in ``server.status``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(self.server.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.status = 200
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_nothing_configured_runs_nothing():
    """Without a ProfileConfig, a coverage path or health settings, no check runs."""
    assert run_checks(settings=_settings()) == []


@pytest.mark.postgres
def test_postgres_from_profile_config_is_healthy_and_gauged(postgres_server, telemetry):
    """CrossBridge's ProfileConfig for a live server: healthy, gauge 1, a health.check span."""
    from core.profiling.models import ProfileConfig, StorageBackendType

    config = ProfileConfig(enabled=True, backend=StorageBackendType.POSTGRES, postgres_host=postgres_server.host,
                           postgres_port=postgres_server.port, postgres_database="postgres",
                           postgres_user=postgres_server.user, postgres_password="")
    meter = telemetry.meter_provider.get_meter("test")
    tracer = telemetry.tracer_provider.get_tracer("test")
    (result,) = run_checks(profile_config=config, settings=_settings(), meter=meter, tracer=tracer)
    assert (result.name, result.healthy) == ("postgres", True)
    assert [(p.attributes["check"], p.value) for p in telemetry.metric_points("crossbridge.health.status")] == [
        ("postgres", 1)]
    assert telemetry.span("health.check").attributes["crossbridge.health.healthy"] is True


def test_unreachable_postgres_is_unhealthy_within_the_bound(telemetry):
    """A closed port: unhealthy, connection refused in the detail, quick, retried once (quick policy)."""
    from support.pgserver import free_port

    dsn = f"host=127.0.0.1 port={free_port()} user=postgres password=secret dbname=postgres"
    tracer = telemetry.tracer_provider.get_tracer("test")
    (result,) = run_checks(settings=_settings(health_postgres=dsn, retry_policies="quick=2:0.01:0.02"),
                           tracer=tracer)
    assert not result.healthy and "refused" in result.detail.lower()
    span = telemetry.span("health.check")
    assert span.attributes["retry.attempts"] == 2
    # quick: the only wait is the configured policy's one short retry
    assert sum(e.attributes["retry.delay_s"] for e in span.events if e.name == "retry") <= 0.02
    assert "secret" not in _event_text(span)


def test_influxdb_health_endpoint(health_server):
    """/health 200 is healthy; 503 is unhealthy."""
    settings = _settings(health_influxdb=health_server.url, retry_policies="quick=2:0.01:0.02")
    assert run_checks(settings=settings)[0].healthy
    health_server.status = 503
    (result,) = run_checks(settings=settings)
    assert (result.name, result.healthy) == ("influxdb", False)


def test_coverage_db_present_and_missing(tmp_path):
    """An existing SQLite file is healthy; a missing one is unhealthy and is not created."""
    db = tmp_path / "coverage.db"
    sqlite3.connect(db).execute("CREATE TABLE test_code_coverage (id INTEGER)").connection.close()
    (ok,) = run_checks(coverage_db=str(db), settings=_settings())
    assert ok.healthy and ok.detail == "1 tables"
    missing = tmp_path / "missing.db"
    (bad,) = run_checks(coverage_db=str(missing), settings=_settings())
    assert not bad.healthy and not missing.exists()


def test_a_secret_the_server_echoes_never_leaves_the_health_span(postgres_server, telemetry):
    """PostgreSQL echoes the role name in its FATAL error: a credential there is masked in message and stack trace."""
    dsn = f"host=127.0.0.1 port={postgres_server.port} user=password=hunter2-health dbname=postgres"
    tracer = telemetry.tracer_provider.get_tracer("test")
    (result,) = run_checks(settings=_settings(health_postgres=dsn, retry_policies="quick=1:0.01:0.02"), tracer=tracer)
    assert not result.healthy
    span = telemetry.span("health.check")
    (event,) = [e for e in span.events if e.name == "exception"]
    assert "does not exist" in event.attributes["exception.stacktrace"]  # the server's own text is there ...
    assert "hunter2-health" not in _event_text(span) + result.detail  # ... with the credential masked


def _event_text(span) -> str:
    """Every event's name and attribute values as one text (``str(span.events)`` shows only object reprs)."""
    return " ".join(f"{e.name} {' '.join(map(str, e.attributes.values()))}" for e in span.events)
