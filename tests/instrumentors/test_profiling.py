"""ProfilingInstrumentor on the real CrossBridge ``core.profiling`` (TARGETS §3, §13 rows 13-15)."""

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
from support.spans import retry_events
from support.waiting import wait_until

from crossbridge_otel.instrumentors.profiling import ProfilingInstrumentor
from crossbridge_otel.patching import status
from crossbridge_otel.patching.status import State
from crossbridge_otel.settings import load as load_settings

pytest_plugins = ["pytester"]


def _settings(**values):
    return load_settings(environ={}, **values)


@pytest.fixture
def profiling_instrumented(telemetry):
    """ProfilingInstrumentor (and threading context propagation) with the test's providers."""
    threading_inst = ThreadingInstrumentor()
    threading_inst.instrument(tracer_provider=telemetry.tracer_provider)
    inst = ProfilingInstrumentor()
    inst.instrument(settings=_settings(retry_policies="default=2:0.01:0.02,quick=2:0.01:0.02"), **telemetry.providers)
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
    from core.profiling.collector import MetricsCollector

    MetricsCollector.reset_instance()


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
    assert PostgresStorageBackend(config).initialize() is False
    span = profiling_instrumented.span("profiling.storage.initialize")
    events = retry_events(span)  # fast: the only wait is the configured policy's one short retry (default=2:0.01:0.02)
    assert len(events) == 2 and sum(e.attributes["retry.delay_s"] for e in events) <= 0.02
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "returned_false"
    assert span.status.description.startswith("Failed to initialize PostgreSQL storage")
    assert "refused" in span.status.description.lower()
    assert not any("hunter2" in str(v) for v in span.attributes.values())
    assert "hunter2" not in span.status.description


def test_postgres_initialize_is_retried_under_quick(telemetry):
    """With no overrides a refused initialize gets quick's 2 attempts, at most 0.1 s apart, not default's 3."""
    from core.profiling.models import ProfileConfig, StorageBackendType
    from core.profiling.storage import PostgresStorageBackend

    inst = ProfilingInstrumentor()
    inst.instrument(settings=_settings(), **telemetry.providers)
    try:
        config = ProfileConfig(enabled=True, backend=StorageBackendType.POSTGRES, postgres_host="127.0.0.1",
                               postgres_port=_closed_port())
        assert PostgresStorageBackend(config).initialize() is False
    finally:
        inst.uninstrument()
    span = telemetry.span("profiling.storage.initialize")
    events = retry_events(span)
    assert span.attributes["retry.attempts"] == 2
    assert [e.attributes["retry.max_attempts"] for e in events] == [2, 2]
    assert 0 <= events[0].attributes["retry.delay_s"] <= 0.1


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
        collector.record_test_start("T::a", "pytest")
        collector.record_test_end("T::a", "pytest", 5, "passed")
        wait_until(lambda: collector.events_written == 2, "the flush thread wrote both events")
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
    collector.record_step_end("T::a", "pytest", "login", 3)
    span = profiling_instrumented.span("profiling.collector.record_step_end")
    assert span.attributes["crossbridge.profiling.collect.count"] == 1
    assert collector.events_collected == 1
    assert profiling_instrumented.spans("profiling.collect") == []


def test_record_methods_read_crossbridges_parameters(profiling_instrumented, tmp_path):
    """record_* spans carry test id, framework, step, status and duration from CrossBridge's own parameters."""
    collector = _local_collector(tmp_path)
    collector.start()
    collector.record_step_end("T::a", "robot", "login", 3)
    collector.record_test_end("T::a", framework="robot", duration_ms=12, status="failed")
    step = profiling_instrumented.span("profiling.collector.record_step_end").attributes
    end = profiling_instrumented.span("profiling.collector.record_test_end").attributes
    p = "crossbridge.profiling."
    assert [step[p + k] for k in ("test_id", "framework", "step", "duration_ms")] == ["T::a", "robot", "login", 3]
    assert [end[p + k] for k in ("framework", "status", "duration_ms")] == ["robot", "failed", 12]


def test_collect_per_event_spans_opt_in(profiling_per_event, tmp_path):
    """With per-event spans on, collect() gets a span of its own."""
    collector = _local_collector(tmp_path)
    collector.start()
    collector.record_test_start("T::b", "pytest")
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


def test_collector_start_disabled_by_environment_is_not_an_error(profiling_instrumented, tmp_path, monkeypatch):
    """CROSSBRIDGE_PROFILING=false makes start() return False by design: the span is not ERROR."""
    monkeypatch.setenv("CROSSBRIDGE_PROFILING", "false")
    assert _local_collector(tmp_path).start() is False
    span = profiling_instrumented.span("profiling.collector.start")
    assert span.attributes["crossbridge.profiling.enabled"] is True
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
    collector.record_test_start("T::c", "pytest")
    collector.shutdown()
    t = profiling_instrumented
    span = t.span("profiling.collector.shutdown")
    assert span.attributes["crossbridge.profiling.events_collected"] == collector.events_collected == 1
    assert span.attributes["crossbridge.profiling.events_written"] == collector.events_written
    assert span.attributes["crossbridge.profiling.backend"] == "local"
    flush = t.span("profiling.collector.flush")
    assert flush.parent.span_id == span.context.span_id


# -- hooks ---------------------------------------------------------------------------------------------


class _NoSuchElement(Exception):
    """Stands for selenium's NoSuchElementException: CrossBridge's proxy is duck-typed and never imports selenium."""


class _Driver:
    """A small WebDriver of our own: what CrossBridge's ProfilingWebDriver proxies to."""

    def __init__(self):
        self.title = "Login"
        self.visited = []
        self.element = object()
        self.raised = None

    def get(self, url):
        self.visited.append(url)

    def find_element(self, by, value):
        if value == "missing":
            self.raised = _NoSuchElement(f"no element {by}={value}")
            raise self.raised
        return self.element

    def click(self):
        return None

    def quit(self):
        return None


def _profiled_driver(tmp_path):
    from core.profiling.hooks.selenium_hook import ProfilingWebDriver

    collector = _local_collector(tmp_path)
    assert collector.start() is True
    return ProfilingWebDriver(_Driver(), "T::d", collector), collector


def test_webdriver_commands_are_counted(profiling_instrumented, tmp_path):
    """Each profiled WebDriver command is counted on the enclosing span, with no span of its own."""
    driver, collector = _profiled_driver(tmp_path)
    with profiling_instrumented.tracer_provider.get_tracer("test").start_as_current_span("test.case"):
        driver.get("http://127.0.0.1/login")
        assert driver.find_element("id", "user") is driver._driver.element
        driver.click()
        driver.quit()  # not one of CrossBridge's profiled commands
        assert driver.title == "Login"
    parent = profiling_instrumented.span("test.case")
    assert parent.attributes["crossbridge.profiling.webdriver.command.count"] == 3
    assert parent.attributes["crossbridge.profiling.collect.count"] == collector.events_collected == 3
    assert "crossbridge.profiling.webdriver.command.errors" not in parent.attributes
    assert driver._driver.visited == ["http://127.0.0.1/login"]
    assert profiling_instrumented.spans("profiling.webdriver.command") == []


def test_webdriver_command_failure_is_visible_on_the_enclosing_span(profiling_instrumented, tmp_path):
    """A command that raises: same exception object, counted as an error and noted as an event on the span."""
    driver, collector = _profiled_driver(tmp_path)
    with profiling_instrumented.tracer_provider.get_tracer("test").start_as_current_span("test.case"):
        with pytest.raises(_NoSuchElement) as caught:
            driver.find_element("id", "missing")
    assert caught.value is driver._driver.raised
    parent = profiling_instrumented.span("test.case")
    assert parent.attributes["crossbridge.profiling.webdriver.command.count"] == 1
    assert parent.attributes["crossbridge.profiling.webdriver.command.errors"] == 1
    (event,) = [e for e in parent.events if e.name == "profiling.webdriver.command.error"]
    assert event.attributes["crossbridge.profiling.command"] == "find_element"
    assert event.attributes["error.type"].endswith("_NoSuchElement")
    assert event.attributes["exception.message"] == "no element id=missing"
    assert collector.events_collected == 1  # CrossBridge still recorded its own failed=True event


def test_webdriver_per_event_spans_opt_in(profiling_per_event, tmp_path):
    """With per-event spans on, each command is a span labelled with the command; a failing one is ERROR."""
    driver, _ = _profiled_driver(tmp_path)
    driver.get("http://127.0.0.1/")
    with pytest.raises(_NoSuchElement):
        driver.find_element("id", "missing")
    ok, failed = profiling_per_event.spans("profiling.webdriver.command")
    assert ok.attributes["crossbridge.profiling.command"] == "get"
    assert ok.status.status_code == StatusCode.UNSET
    assert failed.attributes["crossbridge.profiling.command"] == "find_element"
    assert failed.attributes["error.type"].endswith("_NoSuchElement")
    assert failed.status.status_code == StatusCode.ERROR
    collect = profiling_per_event.spans("profiling.collect")
    assert [c.parent.span_id for c in collect] == [ok.context.span_id, failed.context.span_id]


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


def test_robot_listener_spans(profiling_instrumented, tmp_path):
    """The Robot listener's start_test/end_test get spans with CrossBridge's test id and Robot's status."""
    from core.profiling.hooks.robot_hook import CrossBridgeProfilingListener

    collector = _local_collector(tmp_path)
    collector.start()
    listener = CrossBridgeProfilingListener()  # takes the collector singleton, as under `robot --listener`
    # Listener API 3 passes (running data, result); CrossBridge reads the result's name, parent, passed, message.
    data = SimpleNamespace(name="Login")
    result = SimpleNamespace(name="Login", parent=SimpleNamespace(name="Suite"), status="FAIL", passed=False,
                             message="boom")
    listener.start_test(data, result)
    listener.end_test(data, result)
    t = profiling_instrumented
    start, end = t.span("profiling.robot.start_test"), t.span("profiling.robot.end_test")
    assert start.attributes["crossbridge.profiling.test_id"] == end.attributes["crossbridge.profiling.test_id"] \
        == "Suite::Login"
    assert "crossbridge.profiling.status" not in start.attributes
    assert end.attributes["crossbridge.profiling.status"] == "FAIL"
    assert start.attributes["crossbridge.profiling.collect.count"] == 1
    assert end.attributes["crossbridge.profiling.collect.count"] == 1


def test_playwright_reporter_spans(profiling_instrumented, tmp_path):
    """The Playwright reporter's test/step callbacks get spans with CrossBridge's test id, status and step."""
    from core.profiling.hooks.playwright_hook import CrossBridgePlaywrightReporter

    collector = _local_collector(tmp_path)
    collector.start()
    reporter = CrossBridgePlaywrightReporter()
    test = SimpleNamespace(title="logs in", location=SimpleNamespace(file="tests/login.spec.ts"),
                           parent=SimpleNamespace(project=SimpleNamespace(use={"browserName": "chromium"})))
    running = SimpleNamespace(status="passed", retry=0, error=None)
    reporter.onTestBegin(test, running)
    reporter.onStepEnd(test, running, SimpleNamespace(title="click", duration=5, category="pw:api"))
    reporter.onTestEnd(test, SimpleNamespace(status="timedOut", retry=0, error=None))
    t = profiling_instrumented
    begin = t.span("profiling.playwright.test_begin").attributes
    assert begin["crossbridge.profiling.test_id"] == "tests/login.spec.ts::logs in"
    assert "crossbridge.profiling.status" not in begin
    assert t.span("profiling.playwright.test_end").attributes["crossbridge.profiling.status"] == "timedOut"
    assert t.span("profiling.playwright.step_end").attributes["crossbridge.profiling.step"] == "click"
    assert collector.events_collected == 3


def test_pytest_plugin_in_a_real_pytest_session(profiling_instrumented, tmp_path, pytester):
    """In a real pytest session the plugin's hook wrappers still work and span setup/call/teardown per test."""
    from core.profiling.hooks.pytest_hook import ProfilingPlugin

    collector = _local_collector(tmp_path / "profiles")
    collector.start()
    pytester.makepyfile(test_inner="def test_ok():\n    pass\n\ndef test_fails():\n    assert False\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", plugins=[ProfilingPlugin(collector)])
    result.assert_outcomes(passed=1, failed=1)
    assert ProfilingPlugin.pytest_runtest_call.pytest_impl["hookwrapper"] is True
    t = profiling_instrumented
    calls = {s.attributes["crossbridge.profiling.test_id"]: s for s in t.spans("profiling.pytest.call")}
    assert sorted(calls) == ["test_inner.py::test_fails", "test_inner.py::test_ok"]
    assert all(s.attributes["crossbridge.profiling.collect.count"] == 2 for s in calls.values())
    assert len(t.spans("profiling.pytest.setup")) == len(t.spans("profiling.pytest.teardown")) == 2
    assert collector.events_collected == 8  # setup_end, test_start, test_end, teardown_end per test


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
        time.sleep(0.02)  # the block's own duration, which the span must cover
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
    assert span.attributes["crossbridge.profiling.mean_ms"] == result.avg_duration_ms
    assert span.attributes["error.type"] == "benchmark_failures"
    assert span.status.description.startswith("2 of 4 benchmark iterations failed")
    assert "nope" in span.status.description


def test_uninstrument_restores_profile_collect_and_wrap_method(telemetry, tmp_path):
    """uninstrument puts back context.profile, MetricsCollector.collect and ProfilingWebDriver._wrap_method."""
    from core.profiling import context
    from core.profiling.collector import MetricsCollector
    from core.profiling.hooks.selenium_hook import ProfilingWebDriver

    originals = (context.profile, MetricsCollector.__dict__["collect"], ProfilingWebDriver.__dict__["_wrap_method"])
    inst = ProfilingInstrumentor()
    inst.instrument(**telemetry.providers)
    assert ProfilingWebDriver.__dict__["_wrap_method"] is not originals[2]
    inst.uninstrument()
    assert (context.profile, MetricsCollector.__dict__["collect"],
            ProfilingWebDriver.__dict__["_wrap_method"]) == originals


def test_command_built_before_uninstrument_stops_counting(telemetry, tmp_path):
    """A command function fetched while instrumented is a pass-through once uninstrumented."""
    inst = ProfilingInstrumentor()
    inst.instrument(settings=_settings(), **telemetry.providers)
    try:
        driver, _ = _profiled_driver(tmp_path)
        get = driver.get
    finally:
        inst.uninstrument()
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span("after"):
        get("http://127.0.0.1/")
    assert "crossbridge.profiling.webdriver.command.count" not in telemetry.span("after").attributes
    from core.profiling.collector import MetricsCollector

    MetricsCollector.reset_instance()
