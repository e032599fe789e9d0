"""Self-tests of the CrossBridge-shaped fixtures (logging, profiling, coverage, runtime, services).

Pure CrossBridge behaviour from TARGETS.md §13 rows 1-7, 13, 14, 17, 18 (no OpenTelemetry here).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import sqlite3
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
FIXTURES = TESTS / "fixtures" / "crossbridge"
SAMPLES = TESTS / "samples"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def captured(logger_name: str) -> Iterator[list[logging.LogRecord]]:
    """Collect records emitted on the (non-propagating) stdlib logger ``logger_name``."""
    handler = _ListHandler()
    target = logging.getLogger(logger_name)
    target.addHandler(handler)
    try:
        yield handler.records
    finally:
        target.removeHandler(handler)


@contextlib.contextmanager
def root_records() -> Iterator[list[logging.LogRecord]]:
    handler = _ListHandler()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.NOTSET)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.fixture
def collector_reset() -> Iterator[None]:
    from core.profiling.collector import MetricsCollector

    MetricsCollector.reset_instance()
    try:
        yield
    finally:
        MetricsCollector.reset_instance()


# --------------------------------------------------------------------------------------------- logging


def test_row1_logger_is_private_and_non_propagating() -> None:
    """Row 1: get_logger wraps a non-propagating 'crossbridge.<name>' logger; root sees nothing."""
    from core.logging import CrossBridgeLogger, LogCategory, get_logger
    from core.logging import logger as logger_mod

    saved = logger_mod._loggers.pop("demo.mod", None)
    try:
        cb = get_logger("demo.mod", LogCategory.EXECUTION)
        assert isinstance(cb, CrossBridgeLogger) and not isinstance(cb, logging.Logger)
        assert cb._logger.name == "crossbridge.demo.mod" and cb._logger.propagate is False
        assert cb.category is LogCategory.EXECUTION
        with root_records() as at_root, captured("crossbridge.demo.mod") as recs:
            cb.info("hello")
            cb.success("ok")
        assert at_root == []
        assert [(r.levelno, r.getMessage()) for r in recs] == [(20, "hello"), (25, "ok")]
        assert logging.getLevelName(25) == "SUCCESS" and logging.getLevelName(5) == "TRACE"
        assert not hasattr(recs[0], "category")
        assert recs[0].pathname.endswith(str(Path("core", "logging", "logger.py")))
    finally:
        logger_mod._loggers.pop("demo.mod", None)
        if saved is not None:
            logger_mod._loggers["demo.mod"] = saved


def test_logger_cache_first_category_wins_and_kwargs_fold_into_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """First category wins; kwargs/extra become '[k=v]' text; ERROR goes to stderr, INFO to stdout."""
    from core.logging import LogCategory, get_logger

    name = f"selftest.fold.{uuid.uuid4().hex[:6]}"
    first = get_logger(name, LogCategory.AI)
    assert get_logger(name, LogCategory.EXECUTION) is first and first.category is LogCategory.AI
    with captured("crossbridge." + name) as recs:
        first.info("msg", extra={"a": 1}, run="r1")
        first.error("bad", exc_info=False, code=7)
        first.debug("hidden", x=1)  # below INFO: not emitted
    assert [r.getMessage() for r in recs] == ["msg [extra={'a': 1} run=r1]", "bad [code=7]"]
    assert all(not hasattr(r, "extra") and not hasattr(r, "run") for r in recs)
    out, err = capsys.readouterr()
    assert "msg [extra=" in out and "bad [code=7]" in err and "bad" not in out


def test_filters_and_enhanced_config_clash() -> None:
    """CategoryFilter rejects records (nothing sets record.category); enhanced_config.get_logger is stdlib."""
    from core.logging.enhanced_config import get_logger as enhanced_get_logger
    from core.logging.enhanced_config import setup_enhanced_logging
    from core.logging.filters import CategoryFilter

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    assert CategoryFilter(["execution"]).filter(record) is False
    assert isinstance(enhanced_get_logger("a.b"), logging.Logger)
    with pytest.raises(ValueError, match="Unable to configure formatter 'json'"):
        setup_enhanced_logging()


def test_logging_service_sensitive_filter_bug(tmp_path: Path) -> None:
    """configure_secure_logging with 2 root handlers makes '%s' logging raise TypeError to the caller."""
    from services import logging_service

    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        path = logging_service.setup_logging(log_dir=tmp_path)
        assert path.parent == tmp_path and path.name.startswith("run-") and root.level == logging.DEBUG
        assert logging_service.get_log_file_path() == path
        logging_service.configure_secure_logging()
        with pytest.raises(TypeError, match="not all arguments converted"):
            logging.getLogger("selftest.plain").info("value %s", "x")
    finally:
        for handler in list(root.handlers):
            for flt in [f for f in handler.filters if isinstance(f, logging_service.SensitiveDataFilter)]:
                handler.removeFilter(flt)  # also pytest's own session-wide root handlers
            if handler not in before:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(level)


# --------------------------------------------------------------------------------------------- coverage


def test_row2_jacoco_parse_sample() -> None:
    """Row 2: JaCoCo sample gives 1 class, 1 method, confidence 0.95, source jacoco, framework junit."""
    from core.coverage.jacoco_parser import JaCoCoXMLParser

    mapping = JaCoCoXMLParser().parse(SAMPLES / "jacoco.xml", test_id="LoginTest#testLogin")
    assert mapping.covered_classes == {"com.example.app.LoginService"}
    assert mapping.covered_methods == {"com.example.app.LoginService.login"}
    assert mapping.confidence == 0.95
    assert mapping.coverage_source.value == "jacoco" and mapping.test_framework == "junit"
    batch = JaCoCoXMLParser().parse_batch(SAMPLES / "jacoco.xml", ["a", "b", "c"])
    assert set(batch) == {"a", "b", "c"} and batch["a"].confidence == pytest.approx(0.69)


def test_row3_jacoco_parse_raises(tmp_path: Path) -> None:
    """Row 3: missing file raises FileNotFoundError; malformed XML raises ParseError."""
    from core.coverage.jacoco_parser import JaCoCoXMLParser

    with pytest.raises(FileNotFoundError):
        JaCoCoXMLParser().parse(tmp_path / "missing.xml")
    with pytest.raises(ET.ParseError):
        JaCoCoXMLParser().parse(SAMPLES / "bad.xml")


def test_row4_coverage_py_parse_sample() -> None:
    """Row 4: coverage.py JSON gives 2 units (login 71.43 %, util 0 %), source coverage.py."""
    from core.coverage.coverage_py_parser import CoveragePyParser

    mapping = CoveragePyParser().parse(SAMPLES / "coverage.json", test_name="test_login")
    assert mapping is not None and mapping.coverage_source.value == "coverage.py"
    units = {u.class_name: round(u.line_coverage or 0.0, 2) for u in mapping.covered_code_units}
    assert units == {"login": 71.43, "util": 0.0}
    assert mapping.covered_classes == set()


def test_row5_coverage_py_on_cobertura_returns_none(capsys: pytest.CaptureFixture[str]) -> None:
    """Row 5: Cobertura XML returns None, prints the error, raises nothing."""
    from core.coverage.coverage_py_parser import CoveragePyParser

    assert CoveragePyParser().parse(SAMPLES / "coverage.xml", "t") is None
    assert "Error parsing coverage.py report: Expecting value" in capsys.readouterr().out


def test_row6_istanbul_parse_sample() -> None:
    """Row 6: Istanbul sample gives handleLogin plus the file-level .repo.src.utils.format unit."""
    from core.coverage.istanbul_parser import IstanbulParser

    mapping = IstanbulParser().parse(SAMPLES / "coverage-final.json", "login.spec.js")
    assert mapping is not None
    units = sorted((u.class_name, u.method_name or "") for u in mapping.covered_code_units)
    assert units == [(".repo.src.components.Login", "handleLogin"), (".repo.src.utils.format", "")]
    assert mapping.covered_classes == set()


def test_row7_engine_collect_isolated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Row 7: shell command + JaCoCo + sqlite rows; 'exit 3' and a timeout both give None (printed)."""
    from core.coverage.engine import CoverageMappingEngine

    engine = CoverageMappingEngine(tmp_path / "e.db")
    cmd = f"mkdir -p target/site/jacoco && cp '{SAMPLES / 'jacoco.xml'}' target/site/jacoco/jacoco.xml"
    mapping = engine.collect_coverage_isolated("LoginTest#testLogin", cmd, tmp_path)
    assert mapping is not None and len(mapping.covered_classes) == 1 and mapping.confidence == 0.95
    with sqlite3.connect(tmp_path / "e.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM test_code_coverage").fetchone()[0] == 1
        assert conn.execute("SELECT status FROM coverage_discovery_run").fetchall() == [("completed",)]
    assert engine.query_impact({"com.example.app.LoginService"}).affected_tests == ["LoginTest#testLogin"]

    empty = tmp_path / "empty"
    empty.mkdir()
    assert engine.collect_coverage_isolated("t", "exit 3", empty) is None
    started = time.monotonic()
    assert engine.collect_coverage_isolated("t", "sleep 5", empty, timeout=1) is None
    assert time.monotonic() - started < 3
    out = capsys.readouterr().out
    assert "Test execution failed" in out and "timed out after 1s" in out


def test_cucumber_and_functional_repository_are_broken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cucumber hits AttributeError ('id'), swallowed by the engine; SQLAlchemy 2.x gives ArgumentError."""
    from core.coverage.cucumber_coverage import CucumberCoverageCollector
    from core.coverage.engine import CoverageMappingEngine
    from core.coverage.functional_repository import FunctionalCoverageRepository
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError
    from sqlalchemy.orm import Session

    with pytest.raises(AttributeError, match="'ScenarioResult' object has no attribute 'id'"):
        CucumberCoverageCollector().collect_isolated_scenario_coverage(
            "login;valid-login", SAMPLES / "cucumber.json", SAMPLES / "jacoco.xml"
        )
    engine = CoverageMappingEngine(tmp_path / "c.db")
    cmd = f"mkdir -p target/site/jacoco && cp '{SAMPLES / 'jacoco.xml'}' target/site/jacoco/jacoco.xml"
    assert engine.collect_cucumber_coverage_isolated("x", cmd, tmp_path, SAMPLES / "cucumber.json") is None
    assert "no attribute 'id'" in capsys.readouterr().out
    with Session(create_engine("sqlite://")) as session, pytest.raises(ArgumentError):
        FunctionalCoverageRepository(session).get_all_features()


def test_console_formatter_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """console_formatter imports without tabulate and exports CSV/JSON with prints."""
    from core.coverage import console_formatter

    report = {"rows": [{"feature": "login", "tests": 2}]}
    console_formatter.export_to_csv(report, tmp_path / "r.csv")
    console_formatter.export_to_json(report, tmp_path / "r.json")
    console_formatter.print_functional_coverage_map(report)
    assert (tmp_path / "r.csv").read_text().splitlines() == ["feature,tests", "login,2"]
    assert json.loads((tmp_path / "r.json").read_text()) == report
    assert "Functional Coverage Map" in capsys.readouterr().out


# -------------------------------------------------------------------------------------------- profiling


def test_row13_collector_local_backend_writes_on_background_thread(
    tmp_path: Path, collector_reset: None
) -> None:
    """Row 13: started collector writes 2 JSONL lines, and write_events runs off the caller's thread."""
    from core.profiling.collector import MetricsCollector
    from core.profiling.models import ProfileConfig, StorageBackendType

    collector = MetricsCollector.get_instance(
        ProfileConfig(enabled=True, backend=StorageBackendType.LOCAL, local_path=str(tmp_path))
    )
    writer_threads: list[str] = []
    original = collector.storage.write_events

    def spy(events):  # type: ignore[no-untyped-def]
        writer_threads.append(threading.current_thread().name)
        return original(events)

    collector.storage.write_events = spy  # type: ignore[method-assign]
    assert collector.start() is True
    assert collector.worker_thread is not None and collector.worker_thread.daemon
    collector.record_test_start("t1")
    collector.record_test_end("t1", status="passed")
    deadline = time.monotonic() + 5
    while not writer_threads and time.monotonic() < deadline:
        time.sleep(0.05)
    collector.shutdown()
    files = list(tmp_path.glob("run_*.jsonl"))
    assert len(files) == 1
    lines = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert [line["event_type"] for line in lines] == ["test_start", "test_end"]
    assert all(line["run_id"] == collector.current_run_id and "metadata" in line for line in lines)
    assert writer_threads and threading.current_thread().name not in writer_threads


def test_collector_disabled_default_and_env_switch(
    monkeypatch: pytest.MonkeyPatch, collector_reset: None
) -> None:
    """get_instance() without config is disabled (start False); CROSSBRIDGE_PROFILING=false also refuses."""
    from core.profiling.collector import MetricsCollector
    from core.profiling.models import ProfileConfig, StorageBackendType
    from core.profiling.storage import NoOpStorageBackend

    disabled = MetricsCollector.get_instance()
    assert isinstance(disabled.storage, NoOpStorageBackend) and disabled.start() is False
    MetricsCollector.reset_instance()
    monkeypatch.setenv("CROSSBRIDGE_PROFILING", "false")
    cfg = ProfileConfig(enabled=True, backend=StorageBackendType.NONE)
    assert MetricsCollector.get_instance(cfg).start() is False


def test_row14_postgres_closed_port_returns_false_fast() -> None:
    """Row 14: no server -> initialize() False well under 1 s, ERROR 'Connection refused' (performance)."""
    from core.logging import LogCategory
    from core.logging import logger as logger_mod
    from core.profiling.models import ProfileConfig, StorageBackendType
    from core.profiling.storage import PostgresStorageBackend
    from pgserver import free_port

    backend = PostgresStorageBackend(
        ProfileConfig(
            enabled=True,
            backend=StorageBackendType.POSTGRES,
            postgres_host="127.0.0.1",
            postgres_port=free_port(),
        )
    )
    with captured("crossbridge.core.profiling.storage") as recs:
        started = time.monotonic()
        assert backend.initialize() is False
        assert time.monotonic() - started < 1.0
    assert [r.levelno for r in recs] == [logging.ERROR]
    assert "Failed to initialize PostgreSQL storage" in recs[0].getMessage()
    assert "Connection refused" in recs[0].getMessage()
    assert logger_mod._loggers["core.profiling.storage"].category is LogCategory.PERFORMANCE
    assert backend.write_events([]) is False


@pytest.mark.postgres
def test_row14_postgres_live_initialize_and_write(postgres_server, postgres_db) -> None:  # type: ignore[no-untyped-def]
    """Row 14 (live): initialize() True creates profiling.*; write_events inserts test_end rows only."""
    from core.profiling.models import EventType, PerformanceEvent, ProfileConfig, StorageBackendType
    from core.profiling.storage import PostgresStorageBackend

    cfg = ProfileConfig(
        enabled=True,
        backend=StorageBackendType.POSTGRES,
        postgres_host=postgres_server.host,
        postgres_port=postgres_server.port,
        postgres_database=postgres_db,
        postgres_user=postgres_server.user,
        postgres_password="",
    )
    backend = PostgresStorageBackend(cfg)
    try:
        assert backend.initialize() is True
        run_id = str(uuid.uuid4())
        events = [
            PerformanceEvent.create(run_id, "t1", EventType.TEST_START, "pytest"),
            PerformanceEvent.create(
                run_id, "t1", EventType.TEST_END, "pytest", duration_ms=12.5, status="passed"
            ),
            PerformanceEvent.create(
                run_id,
                "t1",
                EventType.HTTP_REQUEST,
                "requests",
                duration_ms=3,
                endpoint="/x",
                method="GET",
                status_code=0,
            ),
        ]
        assert backend.write_events(events) is True
        assert (
            backend.write_events([PerformanceEvent.create("not-a-uuid", "t", EventType.TEST_END, "p")])
            is False
        )
    finally:
        backend.shutdown()
    conn = postgres_server.connect(dbname=postgres_db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'profiling'")
            assert {r[0] for r in cur.fetchall()} == {
                "runs",
                "tests",
                "steps",
                "http_calls",
                "driver_commands",
                "system_metrics",
            }
            cur.execute("SELECT run_id::text, test_id, duration_ms, status, framework FROM profiling.tests")
            assert cur.fetchall() == [(run_id, "t1", 12, "passed", "pytest")]
            cur.execute("SELECT endpoint, status_code FROM profiling.http_calls")
            assert cur.fetchall() == [("/x", 0)]
            cur.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'profiling' AND indexname LIKE 'idx_%'"
            )
            assert {r[0] for r in cur.fetchall()} == {
                "idx_tests_test_id",
                "idx_tests_created_at",
                "idx_http_calls_endpoint",
            }
    finally:
        conn.close()


def test_influx_backend_and_broken_hook_and_profiler_api() -> None:
    """InfluxDB initialize() is False without influxdb_client; cypress_hook is a SyntaxError; profiler API."""
    from core.profiling import ProfilerConfig, ProfilerType, ProfilingLevel, create_profiler
    from core.profiling.factory import get_profiler, initialize_profiler, reset_profiler
    from core.profiling.models import ProfileConfig
    from core.profiling.noop import NoOpProfiler
    from core.profiling.storage import InfluxDBStorageBackend
    from core.profiling.timing import TimingProfiler

    assert InfluxDBStorageBackend(ProfileConfig(enabled=True)).initialize() is False
    with pytest.raises(SyntaxError) as info:
        importlib.import_module("core.profiling.hooks.cypress_hook")
    assert info.value.lineno == 35
    assert isinstance(create_profiler(ProfilerConfig()), NoOpProfiler)
    assert isinstance(create_profiler(ProfilerConfig(enabled=True)), TimingProfiler)
    with pytest.raises(ValueError):
        create_profiler(
            ProfilerConfig(enabled=True, profiler_type=ProfilerType.RUNTIME, level=ProfilingLevel.SYSTEM)
        )
    reset_profiler()
    try:
        assert isinstance(get_profiler(), NoOpProfiler)
        assert isinstance(initialize_profiler(ProfilerConfig(enabled=True)), TimingProfiler)
        assert isinstance(get_profiler(), TimingProfiler)
    finally:
        reset_profiler()


def test_timing_profiler_emits_slow_calls_and_benchmark_counts_failures() -> None:
    """TimingProfiler logs 'PROFILE: name' only above slow_call_ms; benchmark_operation counts failures."""
    from core.profiling.base import ProfilerConfig, ProfilingMode
    from core.profiling.benchmark import BenchmarkProfiler
    from core.profiling.context import profile, profile_async
    from core.profiling.timing import TimingProfiler

    prof = TimingProfiler(ProfilerConfig(enabled=True, mode=ProfilingMode.FULL, slow_call_ms=0.0))
    with captured("crossbridge.core.profiling.timing") as recs, profile("op", profiler=prof):
        pass
    assert len(recs) == 1 and recs[0].getMessage().startswith("PROFILE: op [duration_ms=")

    calls = {"n": 0}

    def sometimes() -> None:
        calls["n"] += 1
        if calls["n"] % 2 == 0:
            raise RuntimeError("boom")

    with captured("crossbridge.core.profiling.benchmark") as recs:
        result = BenchmarkProfiler(ProfilerConfig(enabled=True)).benchmark_operation(
            "a", sometimes, iterations=4
        )
    assert (result.successful_runs, result.failed_runs) == (2, 2)
    assert [r.levelno for r in recs] == [logging.ERROR, logging.ERROR] and recs[0].exc_info

    async def use_async() -> None:
        async with profile_async("x"):  # type: ignore[attr-defined]
            pass

    import asyncio

    with pytest.raises(TypeError):
        asyncio.run(use_async())


# ---------------------------------------------------------------------------------------------- runtime


def test_row17_retry_with_backoff_logs_and_non_retryable_requests_error() -> None:
    """Row 17: ConnectionError twice then ok (2 WARNING + 1 INFO); requests ConnectionError: 1 call."""
    import requests
    from core.logging import LogCategory
    from core.logging import logger as logger_mod
    from core.runtime import RetryPolicy, retry_with_backoff

    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("down")
        return "ok"

    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
    with captured("crossbridge.core.runtime.retry") as recs:
        assert retry_with_backoff(flaky, policy) == "ok"
    assert calls["n"] == 3
    assert [r.levelno for r in recs] == [logging.WARNING, logging.WARNING, logging.INFO]
    assert logger_mod._loggers["core.runtime.retry"].category is LogCategory.GENERAL

    req_calls = {"n": 0}

    def req_fail() -> None:
        req_calls["n"] += 1
        raise requests.exceptions.ConnectionError("refused")

    with pytest.raises(requests.exceptions.ConnectionError):
        retry_with_backoff(req_fail, policy)
    assert req_calls["n"] == 1


def test_row18_with_database_retry_raises_type_error() -> None:
    """Row 18: the decorator raises TypeError ('policy_name'), never runs the body, logs ERROR."""
    from core.logging import LogCategory
    from core.logging import logger as logger_mod
    from core.runtime import with_database_retry

    ran: list[int] = []

    @with_database_retry(retry_policy_name="quick")
    def body() -> int:
        ran.append(1)
        return 1

    with (
        captured("crossbridge.core.runtime.database_integration") as recs,
        pytest.raises(TypeError, match="policy_name"),
    ):
        body()
    assert ran == []
    assert [r.levelno for r in recs] == [logging.ERROR]
    assert "Database operation failed after retries" in recs[0].getMessage()
    assert logger_mod._loggers["core.runtime.database_integration"].category is LogCategory.PERSISTENCE


def test_runtime_config_rate_limit_health() -> None:
    """Named policies are dicts with default fallback; rate limit message; health registry overall status."""
    from core.runtime import (
        HealthRegistry,
        RateLimiter,
        RateLimitExceeded,
        SimpleHealthCheck,
        check_rate_limit,
        get_rate_limiter,
        get_retry_policy_by_name,
    )

    assert get_retry_policy_by_name("conservative")["max_delay"] == 30.0
    assert get_retry_policy_by_name("standard") == get_retry_policy_by_name("default")
    key = f"selftest-{uuid.uuid4().hex[:6]}"
    assert check_rate_limit(key, 1, 60) is True
    with pytest.raises(RateLimitExceeded, match=f"Rate limit exceeded for '{key}': 1 requests per 60s"):
        check_rate_limit(key, 1, 60)
    get_rate_limiter().reset(key)
    assert RateLimiter().check("k", 2, 60) is True

    registry = HealthRegistry()
    registry.register("ok", SimpleHealthCheck("ok", lambda: True))
    registry.register("bad", SimpleHealthCheck("bad", lambda: 1 / 0))  # type: ignore[arg-type,return-value]
    summary = registry.run_all()
    assert (summary["overall_status"], summary["passed"], summary["failed"]) == ("degraded", 1, 1)
    with pytest.raises(KeyError):
        registry.run("missing")


def test_persistence_schema_create_all_retries_operational_error(tmp_path: Path) -> None:
    """persistence.schema.create_all works on SQLite and retries OperationalError as RetryableError."""
    from core.runtime import RetryableError, RetryPolicy
    from persistence import schema
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 's.db'}")
    schema.create_all(engine)
    assert schema.verify_schema_version(engine) is True
    bad = create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    with captured("crossbridge.core.runtime.retry") as recs, pytest.raises(RetryableError):
        schema.create_all(bad, RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02))
    assert [r.levelno for r in recs] == [logging.WARNING, logging.ERROR]


@pytest.mark.postgres
def test_pgserver_restart_and_kill_backends(postgres_server) -> None:  # type: ignore[no-untyped-def]
    """The harness can stop/start the same cluster on the same port and terminate other backends."""
    import psycopg2

    port = postgres_server.port
    victim = postgres_server.connect()
    assert postgres_server.kill_backends() >= 1
    with pytest.raises(psycopg2.Error):
        with victim.cursor() as cur:
            cur.execute("SELECT 1")
    victim.close()
    postgres_server.stop(mode="fast")
    assert not postgres_server.running
    with pytest.raises(psycopg2.OperationalError):
        postgres_server.connect(connect_timeout=1)
    postgres_server.start()
    assert postgres_server.port == port and postgres_server.running
    conn = postgres_server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        conn.close()
