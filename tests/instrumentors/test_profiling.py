"""ProfilingInstrumentor on the CrossBridge-shaped ``core.profiling`` fixtures (TARGETS §3, §13 rows 13-15)."""

from __future__ import annotations

import http.server
import importlib
import socket
import sys
import threading
import time
from types import SimpleNamespace

import pytest
from opentelemetry.instrumentation.threading import ThreadingInstrumentor
from opentelemetry.trace import StatusCode

from crossbridge_otel import status
from crossbridge_otel.instrumentors.profiling import ProfilingInstrumentor
from crossbridge_otel.settings import load as load_settings
from crossbridge_otel.status import State


def _settings(**values):
    return load_settings(environ={}, **values)


@pytest.fixture
def profiling_instrumented(telemetry):
    """ProfilingInstrumentor (and threading context propagation) with the test's providers."""
    threading_inst = ThreadingInstrumentor()
    threading_inst.instrument(tracer_provider=telemetry.tracer_provider)
    inst = ProfilingInstrumentor()
    inst.instrument(settings=_settings(retry_policies="default=2:0.01:0.02"), **telemetry.providers)
    yield telemetry
    inst.uninstrument()
    threading_inst.uninstrument()
    from core.profiling.collector import MetricsCollector

    MetricsCollector.reset_instance()


@pytest.fixture
def profiling_per_event(telemetry):
    """ProfilingInstrumentor with per-event spans switched on."""
    inst = ProfilingInstrumentor()
    inst.instrument(settings=_settings(per_event_spans=True), **telemetry.providers)
    yield telemetry
    inst.uninstrument()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _local_collector(tmp_path):
    from core.profiling.collector import MetricsCollector
    from core.profiling.models import ProfileConfig, StorageBackendType

    MetricsCollector.reset_instance()
    config = ProfileConfig(enabled=True, backend=StorageBackendType.LOCAL, local_path=str(tmp_path))
    return MetricsCollector.get_instance(config)


# -- storage -------------------------------------------------------------------------------------------


def test_local_storage_write_before_initialize_is_returned_false(profiling_instrumented, tmp_path):
    """write_events before initialize returns False: ERROR returned_false with the backend attribute."""
    from core.profiling.storage import LocalStorageBackend

    assert LocalStorageBackend(str(tmp_path)).write_events([]) is False
    span = profiling_instrumented.span("profiling.storage.write")
    assert span.attributes["error.type"] == "returned_false"
    assert span.attributes["crossbridge.profiling.backend"] == "local"
    assert span.attributes["crossbridge.category"] == "performance"


def test_local_storage_initialize_ok(profiling_instrumented, tmp_path):
    """initialize on a writable directory is OK and typed local."""
    from core.profiling.storage import LocalStorageBackend

    assert LocalStorageBackend(str(tmp_path / "p")).initialize() is True
    span = profiling_instrumented.span("profiling.storage.initialize")
    assert span.status.status_code == StatusCode.UNSET
    assert span.attributes["crossbridge.profiling.backend"] == "local"


def test_postgres_closed_port_is_returned_false_with_message(profiling_instrumented):
    """Row 14: a closed port returns False fast; the span is ERROR with CrossBridge's logged message."""
    from core.profiling.models import ProfileConfig, StorageBackendType
    from core.profiling.storage import PostgresStorageBackend

    config = ProfileConfig(enabled=True, backend=StorageBackendType.POSTGRES, postgres_host="127.0.0.1",
                           postgres_port=_closed_port(), postgres_password="hunter2")
    started = time.monotonic()
    assert PostgresStorageBackend(config).initialize() is False
    assert time.monotonic() - started < 3
    span = profiling_instrumented.span("profiling.storage.initialize")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "returned_false"
    assert span.status.description.startswith("Failed to initialize PostgreSQL storage")
    assert "refused" in span.status.description.lower()
    assert not any("hunter2" in str(v) for v in span.attributes.values())
    assert "hunter2" not in span.status.description


def test_influx_without_client_is_returned_false(profiling_instrumented):
    """InfluxDB initialize without influxdb_client returns False with the import error text."""
    from core.profiling.models import ProfileConfig
    from core.profiling.storage import InfluxDBStorageBackend

    assert InfluxDBStorageBackend(ProfileConfig(enabled=True, influxdb_token="tok")).initialize() is False
    span = profiling_instrumented.span("profiling.storage.initialize")
    assert span.attributes["crossbridge.profiling.backend"] == "influxdb"
    assert "influxdb_client" in span.status.description


def test_storage_factory_records_backend(profiling_instrumented, tmp_path):
    """StorageFactory.from_config records the requested and the created backend."""
    from core.profiling.models import ProfileConfig, StorageBackendType
    from core.profiling.storage import StorageFactory

    StorageFactory.from_config(ProfileConfig(enabled=True, backend=StorageBackendType.LOCAL,
                                             local_path=str(tmp_path)))
    StorageFactory.from_config(ProfileConfig(enabled=False))
    local, noop = profiling_instrumented.spans("profiling.storage.create")
    assert local.attributes["crossbridge.profiling.backend_requested"] == "local"
    assert local.attributes["crossbridge.profiling.backend"] == "local"
    assert noop.attributes["crossbridge.profiling.backend"] == "none"


# -- collector and the flush thread --------------------------------------------------------------------


def test_collector_run_writes_in_the_run_trace(profiling_instrumented, tmp_path):
    """Row 13: background writes are children of collector.start and linked to the recording spans."""
    t = profiling_instrumented
    tracer = t.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("run"):
        collector = _local_collector(tmp_path)
        assert collector.start() is True
        collector.record_test_start("T::a")
        collector.record_test_end("T::a", status="passed")
        deadline = time.monotonic() + 5
        while collector.events_written < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        collector.shutdown()
    files = list(tmp_path.glob("run_*.jsonl"))
    assert len(files) == 1 and len(files[0].read_text().splitlines()) == 2
    run = t.span("run")
    start = t.span("profiling.collector.start")
    writes = [s for s in t.spans("profiling.storage.write") if s.attributes["crossbridge.profiling.events"]]
    assert writes, [s.name for s in t.spans()]
    write = writes[0]
    assert write.context.trace_id == run.context.trace_id
    assert write.parent.span_id == start.context.span_id
    record_spans = {s.context.span_id for s in t.spans() if s.name.startswith("profiling.collector.record_test")}
    assert {link.context.span_id for link in write.links} == record_spans
    assert write.attributes["crossbridge.profiling.links"] == 2
    roots = [s for s in t.spans() if s.parent is None]
    assert [s.name for s in roots] == ["run"]


def test_collect_is_counted_on_the_record_span(profiling_instrumented, tmp_path):
    """collect() makes no span of its own and is counted on the enclosing record span."""
    collector = _local_collector(tmp_path)
    collector.start()
    collector.record_step_end("T::a", "login", duration_ms=3.0)
    span = profiling_instrumented.span("profiling.collector.record_step_end")
    assert span.attributes["crossbridge.profiling.collect.count"] == 1
    assert span.attributes["crossbridge.profiling.step"] == "login"
    assert profiling_instrumented.spans("profiling.collect") == []


def test_collect_per_event_spans_opt_in(profiling_per_event, tmp_path):
    """With per-event spans on, collect() gets a span of its own."""
    collector = _local_collector(tmp_path)
    collector.start()
    collector.record_test_start("T::b")
    collector.shutdown()
    from core.profiling.collector import MetricsCollector

    MetricsCollector.reset_instance()
    assert len(profiling_per_event.spans("profiling.collect")) == 1


def test_collector_start_disabled_is_not_an_error(profiling_instrumented):
    """start() on a disabled collector returns False without marking the span ERROR."""
    from core.profiling.collector import MetricsCollector

    MetricsCollector.reset_instance()
    assert MetricsCollector.get_instance().start() is False
    span = profiling_instrumented.span("profiling.collector.start")
    assert span.attributes["crossbridge.profiling.enabled"] is False
    assert span.status.status_code == StatusCode.UNSET


def test_collector_start_failing_storage_is_error(profiling_instrumented):
    """start() whose storage fails to initialize is ERROR returned_false with CrossBridge's text."""
    from core.profiling.collector import MetricsCollector
    from core.profiling.models import ProfileConfig, StorageBackendType

    MetricsCollector.reset_instance()
    config = ProfileConfig(enabled=True, backend=StorageBackendType.POSTGRES, postgres_host="127.0.0.1",
                           postgres_port=_closed_port())
    assert MetricsCollector.get_instance(config).start() is False
    span = profiling_instrumented.span("profiling.collector.start")
    assert span.attributes["error.type"] == "returned_false"
    assert "PostgreSQL" in span.status.description


def test_collector_shutdown_reports_counts(profiling_instrumented, tmp_path):
    """shutdown records the collected/dropped/written counters; its final write is its descendant."""
    collector = _local_collector(tmp_path)
    collector.start()
    collector.record_test_start("T::c")
    collector.shutdown()
    t = profiling_instrumented
    span = t.span("profiling.collector.shutdown")
    assert span.attributes["crossbridge.profiling.events_collected"] == collector.events_collected == 1
    assert span.attributes["crossbridge.profiling.events_written"] == collector.events_written
    assert span.attributes["crossbridge.profiling.backend"] == "local"
    flush = t.span("profiling.collector.flush")
    assert flush.parent.span_id == span.context.span_id


# -- hooks ---------------------------------------------------------------------------------------------


def test_webdriver_commands_are_counted(profiling_instrumented, tmp_path):
    """ProfilingWebDriver commands are counted on the enclosing span, not spanned."""
    from core.profiling.hooks.selenium_hook import ProfilingWebDriver

    collector = _local_collector(tmp_path)
    collector.start()
    driver = ProfilingWebDriver(SimpleNamespace(get=lambda url: None, refresh=lambda: None), "T::d", collector)
    with profiling_instrumented.tracer_provider.get_tracer("test").start_as_current_span("test.case"):
        driver.get("https://example.com")
        driver.get("https://example.com/2")
        driver.refresh()
    parent = profiling_instrumented.span("test.case")
    assert parent.attributes["crossbridge.profiling.webdriver.command.count"] == 3
    assert parent.attributes["crossbridge.profiling.collect.count"] == 3
    assert profiling_instrumented.spans("profiling.webdriver.command") == []


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def profiling_http_404():
    """A local HTTP server answering 404 on 127.0.0.1."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/missing?token=abc"
    server.shutdown()
    server.server_close()


def test_profiling_session_shows_real_status(profiling_instrumented, tmp_path, profiling_http_404):
    """Row 15: the span shows the real 404 while CrossBridge records status_code 0; token redacted."""
    from core.profiling.hooks.http_hook import ProfilingSession

    collector = _local_collector(tmp_path)
    collector.start()
    with ProfilingSession("api_test", collector) as session:
        assert session.get(profiling_http_404).status_code == 404
    span = profiling_instrumented.span("profiling.http.request")
    assert span.attributes["http.response.status_code"] == 404
    assert span.attributes["http.request.method"] == "GET"
    assert "token" not in span.attributes["crossbridge.profiling.endpoint"]
    assert span.attributes["crossbridge.profiling.collect.count"] == 1


def test_robot_and_playwright_hooks(profiling_instrumented, tmp_path):
    """Robot listener and Playwright reporter methods each get a span with the test id and status."""
    from core.profiling.hooks.playwright_hook import CrossBridgePlaywrightReporter
    from core.profiling.hooks.robot_hook import CrossBridgeProfilingListener

    collector = _local_collector(tmp_path)
    collector.start()
    listener = CrossBridgeProfilingListener(collector)
    data = SimpleNamespace(name="Login", parent=SimpleNamespace(name="Suite"))
    listener.start_test(data, SimpleNamespace())
    listener.end_test(data, SimpleNamespace(status="FAIL", message="boom"))
    reporter = CrossBridgePlaywrightReporter(collector)
    test = SimpleNamespace(id="t1", title="logs in")
    reporter.onTestBegin(test)
    reporter.onStepEnd(test, None, SimpleNamespace(title="click", duration=5))
    reporter.onTestEnd(test, SimpleNamespace(status="timedOut", duration=10, retry=0, error=None))
    t = profiling_instrumented
    end = t.span("profiling.robot.end_test")
    assert end.attributes["crossbridge.profiling.test_id"] == "Suite::Login"
    assert end.attributes["crossbridge.profiling.status"] == "FAIL"
    assert t.span("profiling.robot.start_test").attributes["crossbridge.profiling.collect.count"] == 1
    assert t.span("profiling.playwright.test_end").attributes["crossbridge.profiling.status"] == "timedOut"
    assert t.span("profiling.playwright.step_end").attributes["crossbridge.profiling.step"] == "click"
    assert t.span("profiling.playwright.test_begin").attributes["crossbridge.profiling.test_id"] == "t1"


def test_pytest_plugin_hook_wrappers(profiling_instrumented, tmp_path):
    """The plugin's hook wrappers stay generator hook wrappers and span setup/call/teardown."""
    from core.profiling.hooks.pytest_hook import ProfilingPlugin

    collector = _local_collector(tmp_path)
    collector.start()
    plugin = ProfilingPlugin(collector)
    item = SimpleNamespace(nodeid="tests/test_x.py::test_y")
    for hook in (plugin.pytest_runtest_setup, plugin.pytest_runtest_call, plugin.pytest_runtest_teardown):
        gen = hook(item)
        next(gen)
        with pytest.raises(StopIteration):
            next(gen)
    assert ProfilingPlugin.pytest_runtest_call.pytest_impl["hookwrapper"] is True
    t = profiling_instrumented
    call = t.span("profiling.pytest.call")
    assert call.attributes["crossbridge.profiling.test_id"] == "tests/test_x.py::test_y"
    assert call.attributes["crossbridge.profiling.collect.count"] == 2
    assert len(t.spans("profiling.pytest.setup")) == len(t.spans("profiling.pytest.teardown")) == 1


def test_cypress_hook_syntax_error_survived_and_reported(profiling_instrumented):
    """cypress_hook's SyntaxError reaches the importer unchanged and doctor's status says FAILED."""
    sys.modules.pop("core.profiling.hooks.cypress_hook", None)
    with pytest.raises(SyntaxError):
        importlib.import_module("core.profiling.hooks.cypress_hook")
    states = {(s.module, s.qualname): s for s in status.snapshot() if s.area == "profiling"}
    cypress = states[("core.profiling.hooks.cypress_hook", "create_cypress_profiling_files")]
    assert cypress.state == State.FAILED
    assert "SyntaxError" in cypress.detail


def test_every_other_target_is_patched(profiling_instrumented):
    """After importing every profiling module, each target but cypress_hook's is PATCHED."""
    for target in ProfilingInstrumentor.targets:
        if "cypress" not in target.module:
            importlib.import_module(target.module)
    states = {(s.module, s.qualname): s.state for s in status.snapshot() if s.area == "profiling"}
    for target in ProfilingInstrumentor.targets:
        if "cypress" not in target.module:
            assert states[(target.module, target.qualname)] == State.PATCHED, target.function_name


# -- profiler API --------------------------------------------------------------------------------------


def test_create_profiler_records_type_and_error(profiling_instrumented):
    """create_profiler records the profiler built; RUNTIME+SYSTEM's ValueError is recorded and re-raised."""
    from core.profiling.base import ProfilerConfig, ProfilerType, ProfilingLevel
    from core.profiling.factory import create_profiler

    create_profiler(ProfilerConfig(enabled=True, profiler_type=ProfilerType.RUNTIME))
    with pytest.raises(ValueError):
        create_profiler(ProfilerConfig(enabled=True, level=ProfilingLevel.SYSTEM))
    ok, failed = profiling_instrumented.spans("profiling.profiler.create")
    assert ok.attributes["crossbridge.profiling.profiler"] == "TimingProfiler"
    assert failed.attributes["error.type"] == "ValueError"


def test_profile_span_covers_the_with_block(profiling_instrumented):
    """context.profile's span covers the with block: a span opened inside is its child."""
    from core.profiling.context import profile

    tracer = profiling_instrumented.tracer_provider.get_tracer("test")
    with profile("checkout"):
        time.sleep(0.02)
        with tracer.start_as_current_span("inside"):
            pass
    outer = profiling_instrumented.span("profiling.profile")
    inside = profiling_instrumented.span("inside")
    assert outer.attributes["crossbridge.profiling.name"] == "checkout"
    assert outer.end_time - outer.start_time >= 20_000_000
    assert inside.end_time <= outer.end_time


def test_profile_exception_in_block_is_recorded(profiling_instrumented):
    """An exception raised in the with block is recorded on profiling.profile and propagates unchanged."""
    from core.profiling.context import profile

    boom = RuntimeError("boom")
    with pytest.raises(RuntimeError) as caught, profile("x"):
        raise boom
    assert caught.value is boom
    assert profiling_instrumented.span("profiling.profile").attributes["error.type"] == "RuntimeError"


def test_profiled_decorator_goes_through_profile(profiling_instrumented):
    """A @profiled function runs inside a profiling.profile span named after it."""
    from core.profiling.context import profiled

    @profiled("op")
    def work():
        return 42

    assert work() == 42
    assert profiling_instrumented.span("profiling.profile").attributes["crossbridge.profiling.name"] == "op"


def test_benchmark_failures_are_error(profiling_instrumented):
    """benchmark_operation with failing iterations is ERROR benchmark_failures with CrossBridge's text."""
    from core.profiling.base import ProfilerConfig, ProfilerType
    from core.profiling.benchmark import BenchmarkProfiler

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) % 2:
            raise RuntimeError("nope")

    result = BenchmarkProfiler(ProfilerConfig(enabled=True, profiler_type=ProfilerType.BENCHMARK)) \
        .benchmark_operation("selenium", flaky, iterations=4)
    span = profiling_instrumented.span("profiling.benchmark")
    assert span.attributes["crossbridge.profiling.failed_runs"] == result.failed_runs == 2
    assert span.attributes["error.type"] == "benchmark_failures"
    assert span.status.description.startswith("2 of 4 benchmark iterations failed")
    assert "nope" in span.status.description


def test_uninstrument_restores_profile_and_collect(telemetry):
    """uninstrument puts back context.profile and MetricsCollector.collect exactly."""
    from core.profiling import context
    from core.profiling.collector import MetricsCollector

    original_profile, original_collect = context.profile, MetricsCollector.__dict__["collect"]
    inst = ProfilingInstrumentor()
    inst.instrument(**telemetry.providers)
    assert context.profile is not original_profile
    inst.uninstrument()
    assert context.profile is original_profile
    assert MetricsCollector.__dict__["collect"] is original_collect
