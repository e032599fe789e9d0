"""Health checks of the stores CrossBridge writes to, with bounded timeouts, for ``crossbridge-otel doctor``
and the ``crossbridge.health.status`` gauge (1 healthy, 0 unhealthy; attribute ``check``).

==============  =======================================================  ========================================
check           what it does                                             configured by (first found)
==============  =======================================================  ========================================
``postgres``    connect (``connect_timeout``), ``SELECT 1`` under a      ``profile_config`` (CrossBridge
                ``statement_timeout``                                    ``ProfileConfig.postgres_*``), else
                                                                         ``CROSSBRIDGE_OTEL_HEALTH_POSTGRES``
                                                                         (libpq DSN or ``postgresql://`` URL)
``influxdb``    ``GET <url>/health`` (expects 200)                       ``profile_config.influxdb_url``, else
                                                                         ``CROSSBRIDGE_OTEL_HEALTH_INFLUXDB``
``coverage_db`` open read-only (never creates the file), read            ``coverage_db=``, else
                ``sqlite_master``                                        ``CROSSBRIDGE_OTEL_HEALTH_COVERAGE_DB``
==============  =======================================================  ========================================

A check that is not configured is not run. Each probe is bounded by ``CROSSBRIDGE_OTEL_HEALTH_TIMEOUT``
(seconds) and retried under the ``quick`` policy (idempotent), so one check takes at most about twice the
timeout. Usage::

    from crossbridge_otel.doctor.health import run_checks
    for result in run_checks(profile_config=config, coverage_db="coverage.db", meter=meter, tracer=tracer):
        print(result.name, result.healthy, result.detail)
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.metrics import Meter, _Gauge
from opentelemetry.trace import INVALID_SPAN, Span, Status, StatusCode, Tracer

from crossbridge_otel.patching.wrapping import exception_attributes
from crossbridge_otel.redaction import redact
from crossbridge_otel.retry.policies import policy_named
from crossbridge_otel.settings import Settings
from crossbridge_otel.settings import load as load_settings

__all__ = ["HEALTH_METRIC", "CheckResult", "health_gauge", "run_checks"]

HEALTH_METRIC = "crossbridge.health.status"

_lock = threading.Lock()
_gauges: dict[int, tuple[Meter, _Gauge]] = {}


def health_gauge(meter: Meter) -> _Gauge:
    """The ``crossbridge.health.status`` gauge of ``meter`` (created once per meter)."""
    with _lock:
        entry = _gauges.get(id(meter))
        if entry is None or entry[0] is not meter:
            gauge = meter.create_gauge(HEALTH_METRIC, unit="1", description="1 healthy, 0 unhealthy, per check")
            entry = _gauges[id(meter)] = (meter, gauge)
        return entry[1]


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: ``detail`` is a short, redacted reason."""

    name: str
    healthy: bool
    detail: str
    duration_s: float


def _postgres_probe(target: Any, timeout: float) -> Callable[[], str]:
    def probe() -> str:
        import psycopg2

        connect_timeout = max(2, math.ceil(timeout))  # libpq treats anything below 2 s as 2 s
        if isinstance(target, str):
            conn = psycopg2.connect(target, connect_timeout=connect_timeout)
        else:
            conn = psycopg2.connect(host=target.postgres_host, port=target.postgres_port,
                                    dbname=target.postgres_database, user=target.postgres_user,
                                    password=target.postgres_password, connect_timeout=connect_timeout)
        try:
            with conn.cursor() as cur:
                cur.execute(f"SET statement_timeout = {int(timeout * 1000)}")
                cur.execute("SELECT 1")
                cur.fetchone()
            return "SELECT 1 ok"
        finally:
            conn.close()

    return probe


def _influx_probe(url: str, timeout: float) -> Callable[[], str]:
    def probe() -> str:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout) as response:
            return f"HTTP {response.status}"

    return probe


def _sqlite_probe(path: str, timeout: float) -> Callable[[], str]:
    def probe() -> str:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
        try:
            (tables,) = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
            return f"{tables} tables"
        finally:
            conn.close()

    return probe


def _configured(profile_config: Any, coverage_db: str | None, settings: Settings,
                timeout: float) -> list[tuple[str, Callable[[], str]]]:
    checks: list[tuple[str, Callable[[], str]]] = []
    backend = str(getattr(getattr(profile_config, "backend", None), "value", getattr(profile_config, "backend", "")))
    if profile_config is not None and backend == "postgres":
        checks.append(("postgres", _postgres_probe(profile_config, timeout)))
    elif settings.health_postgres:
        checks.append(("postgres", _postgres_probe(settings.health_postgres, timeout)))
    influx_url = getattr(profile_config, "influxdb_url", None) if backend == "influxdb" else None
    if influx_url or settings.health_influxdb:
        checks.append(("influxdb", _influx_probe(influx_url or settings.health_influxdb, timeout)))
    path = coverage_db or settings.health_coverage_db
    if path:
        checks.append(("coverage_db", _sqlite_probe(str(path), timeout)))
    return checks


def run_checks(*, profile_config: Any = None, coverage_db: str | None = None, settings: Settings | None = None,
               meter: Meter | None = None, tracer: Tracer | None = None) -> list[CheckResult]:
    """Run every configured check (see the module docstring); never raises."""
    from crossbridge_otel.retry.invoker import Retrier  # the retry layer imports the engine; keep doctor imports light

    settings = settings or load_settings(warn=False)
    timeout = float(settings.health_timeout)
    retrier = Retrier(policy_named("quick", settings.retry_policies), budget=max(timeout * 3, 1.0))
    results = []
    for name, probe in _configured(profile_config, coverage_db, settings, timeout):
        results.append(_run_one(name, probe, retrier, tracer))
        if meter is not None:
            health_gauge(meter).set(1 if results[-1].healthy else 0, {"check": name})
    return results


def _run_one(name: str, probe: Callable[[], str], retrier: Any, tracer: Tracer | None) -> CheckResult:
    span: Span = INVALID_SPAN
    if tracer is not None:
        span = tracer.start_span("health.check", attributes={"crossbridge.area": "runtime",
                                                             "crossbridge.health.check": name})
    started = time.monotonic()
    try:
        detail, healthy = retrier.call(probe, span), True
    except Exception as exc:
        detail, healthy = redact(f"{type(exc).__name__}: {exc}".strip())[:300], False
        span.record_exception(exc, attributes=exception_attributes(exc))
        span.set_status(Status(StatusCode.ERROR, detail))
    span.set_attribute("crossbridge.health.healthy", healthy)
    span.end()
    return CheckResult(name, healthy, str(detail), time.monotonic() - started)
