"""Profiling instrumentation: CrossBridge's ``core.profiling`` storage, collector, hooks and profiler API.

Enabled under ``opentelemetry-instrument`` as ``crossbridge_profiling``,
its name in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``; in code::

    from crossbridge_otel.instrumentors.profiling import ProfilingInstrumentor
    ProfilingInstrumentor().instrument(tracer_provider=..., meter_provider=...)

Every span carries ``crossbridge.area=profiling``, ``crossbridge.category=performance`` and
``code.function.name``; attribute names below are short for ``crossbridge.profiling.<name>``.

- ``profiling.storage.initialize`` / ``write`` / ``flush`` / ``shutdown`` (``Local``, ``Postgres`` and
  ``InfluxDB`` ``StorageBackend``): ``backend`` (local, postgres, influxdb), ``events`` (batch size of a
  write), ``links``. A ``False`` return → ERROR ``returned_false`` with CrossBridge's own ERROR log text
  (for example ``Failed to initialize PostgreSQL storage: ... Connection refused``). ``initialize`` is
  retried under the ``quick`` policy (2 attempts, at most 0.1 s apart): it runs on the application's thread at
  start-up (``MetricsCollector.start``), where a refused connection far more often means no server (not
  started, wrong host, or CrossBridge's own tests' fixed address) than a server restarting at that instant,
  and where ``default``'s up to 1.5 s of waiting is paid by every such start yet still outlasts no restart
  (restarts take seconds). A host name that does not resolve or a network that is unreachable is not
  retried at all (``crossbridge_otel.retry.transient``). Postgres ``write_events`` is retried only when
  retried writes are switched on (``restart`` on the collector's flush thread, where waiting costs the
  application nothing; ``default`` elsewhere).
  With the psycopg2 instrumentation on, the backend's queries are ``psycopg2`` child spans (statements
  only: the backend's queries are parameterized and parameters are not captured by default).
- ``profiling.storage.create`` (``StorageFactory.from_config``): ``backend`` requested and created.
- ``profiling.collector.start`` / ``flush`` / ``shutdown`` (``MetricsCollector``): ``backend``,
  ``enabled``, ``sampling_rate``, ``queued``, and at shutdown ``events_collected`` / ``_dropped`` /
  ``_written``. ``start`` returning ``False`` while profiling is enabled (config and ``CROSSBRIDGE_PROFILING``) → ERROR
  ``returned_false``.
- ``profiling.collector.record_test_start`` / ``record_test_end`` / ``record_step_start`` /
  ``record_step_end``: ``test_id``, ``framework``, ``step``, ``status``, ``duration_ms``.
- ``MetricsCollector.collect`` and every ``ProfilingWebDriver`` command are high-frequency: counted on the
  enclosing span (``crossbridge.profiling.collect.count``, ``crossbridge.profiling.webdriver.command.count``);
  a span each only with ``CROSSBRIDGE_OTEL_PER_EVENT_SPANS=true``. A WebDriver command runs the function
  ``ProfilingWebDriver._wrap_method`` built for it on attribute access: that function is what is counted. A
  command that raises is also counted in ``crossbridge.profiling.webdriver.command.errors`` and noted on the
  enclosing span as a ``profiling.webdriver.command.error`` event (``command``, ``error.type``,
  ``exception.message``); with per-event spans its own ``profiling.webdriver.command`` span (``command``) is
  ERROR with the exception.
- The background flush thread: storage writes run on ``MetricsCollector``'s daemon thread. Each write span
  is the child of ``profiling.collector.start`` (the context the thread was started in, carried by the
  ``opentelemetry-instrumentation-threading`` instrumentation that ``opentelemetry-instrument`` loads) and
  carries a span **link** to every distinct span that was current when one of its events was collected
  (``collect`` remembers it in a bounded side table keyed by the event's identity; nothing is added to
  CrossBridge's objects). So a batch gathered from many tests is linked to each of them.
- Hooks: ``profiling.pytest.setup`` / ``call`` / ``teardown`` (the plugin's hook wrappers, ``test_id`` =
  node id), ``profiling.http.request`` (``ProfilingSession.request``: ``http.request.method``,
  ``http.response.status_code`` — the real code, where CrossBridge records 0 for 4xx/5xx), ``profiling.robot.
  start_test`` / ``end_test`` (``test_id`` = ``suite::test`` as CrossBridge builds it, ``status`` = Robot's),
  ``profiling.playwright.test_begin`` / ``test_end`` / ``step_end`` (``test_id`` = ``file::title`` as
  CrossBridge builds it, ``status`` = Playwright's, ``step``).
  ``core.profiling.hooks.cypress_hook`` is a ``SyntaxError`` in CrossBridge: its target is reported
  ``failed`` with that reason by ``crossbridge-otel doctor`` and the import fails exactly as without us.
- Profiler API: ``profiling.profiler.create`` (``create_profiler``: ``profiler_type``, ``level``,
  ``profiler``), ``profiling.profile`` (``context.profile`` and so every ``@profiled`` function: the span
  covers the ``with`` block; ``name``), ``profiling.benchmark`` (``BenchmarkProfiler.benchmark_operation``:
  ``adapter``, ``iterations``, ``successful_runs``, ``failed_runs``, ``mean_ms`` (CrossBridge's
  ``avg_duration_ms``); ``failed_runs > 0`` →
  ERROR ``benchmark_failures`` with CrossBridge's last ERROR log text).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import Span

from crossbridge_otel.patching.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.patching.invokers import AfterCall
from crossbridge_otel.patching.readers import Prefix, arg, bounded, enum_value, failed_if_false, fields, size
from crossbridge_otel.patching.targets import Attrs, Failure, Target
from crossbridge_otel.patching.wrapping import mark_failure
from crossbridge_otel.retry.invoker import Retry, Worker

from ._profiling_support import CAPTURE, LINK_EVENTS, ProfilingTarget, contexts, last_error, remembering

__all__ = ["ProfilingInstrumentor"]

_P = Prefix("crossbridge.profiling.")
_LOGGERS = ("crossbridge.core.profiling.storage", "crossbridge.core.profiling.benchmark")
_BACKENDS = {"LocalStorageBackend": "local", "PostgresStorageBackend": "postgres",
             "InfluxDBStorageBackend": "influxdb", "NoOpStorageBackend": "none"}


def _start_read(span: Span, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    collector = args[0]
    # CrossBridge's own two off switches make start() return False by design (logged at INFO): not a failure.
    enabled = bool(getattr(getattr(collector, "config", None), "enabled", False))
    enabled = enabled and os.environ.get("CROSSBRIDGE_PROFILING", "").lower() != "false"
    if result is False and enabled:
        mark_failure(span, ("returned_false", last_error.peek() or
                            "MetricsCollector.start returned False: the storage backend did not initialize "
                            "or CROSSBRIDGE_PROFILING=false"))


_SHUTDOWN_COUNTS = fields(_P, "events_collected", "events_dropped", "events_written")


def _shutdown_read(span: Span, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    counts = _SHUTDOWN_COUNTS(args[0])
    span.set_attributes({key: value for key, value in counts.items() if isinstance(value, int)})


# -- attribute readers ---------------------------------------------------------------------------------


def _backend(kind: str) -> Callable[[tuple[Any, ...], dict[str, Any]], Attrs]:
    static = {_P.backend: kind}

    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        return static

    return call


def _write_call(kind: str) -> Callable[[tuple[Any, ...], dict[str, Any]], Attrs]:
    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        return {_P.backend: kind, _P.events: size(arg(args, kwargs, 1, "events"))}

    return call


def _factory_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    config = arg(args, kwargs, 0, "config")
    return {_P.enabled: getattr(config, "enabled", None),
            _P.backend_requested: enum_value(getattr(config, "backend", None))}


def _factory_result(backend: Any) -> Attrs:
    return {_P.backend: _BACKENDS.get(type(backend).__name__, "other")}


def _collector_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    collector = args[0]
    config = getattr(collector, "config", None)
    return {_P.enabled: getattr(config, "enabled", None), _P.sampling_rate: getattr(config, "sampling_rate", None),
            _P.backend: _BACKENDS.get(type(getattr(collector, "storage", None)).__name__, "other")}


def _flush_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    queue = getattr(args[0], "queue", None)
    return {_P.queued: queue.qsize() if queue is not None else None}


# CrossBridge's parameters after ``self``, in order (record_test_end(test_id, framework, duration_ms, status)).
_RECORD_PARAMS = {
    "record_test_start": ("test_id", "framework"),
    "record_test_end": ("test_id", "framework", "duration_ms", "status"),
    "record_step_start": ("test_id", "framework", "step_name"),
    "record_step_end": ("test_id", "framework", "step_name", "duration_ms"),
}
_RECORD_KEYS = {"step_name": "step"}


def _record_call(params: tuple[str, ...]) -> Callable[[tuple[Any, ...], dict[str, Any]], Attrs]:
    keys = [(index, name, _P[_RECORD_KEYS.get(name, name)]) for index, name in enumerate(params, start=1)]

    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        attributes: dict[str, Any] = {}
        for index, name, key in keys:
            value = arg(args, kwargs, index, name)
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            attributes[key] = value if numeric else bounded(value)
        return attributes

    return call


def _pytest_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_P.test_id: bounded(getattr(arg(args, kwargs, 1, "item"), "nodeid", None))}


def _http_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    method = arg(args, kwargs, 1, "method")
    url = str(arg(args, kwargs, 2, "url", ""))
    return {"http.request.method": str(method).upper() if method else None,
            _P.endpoint: bounded(url.split("?", 1)[0])}


def _http_result(response: Any) -> Attrs:
    return {"http.response.status_code": getattr(response, "status_code", None)}


def _robot_call(status: bool) -> Callable[[tuple[Any, ...], dict[str, Any]], Attrs]:
    """Listener API 3 ``(data, result)``: the test id as CrossBridge builds it, from the result object."""

    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        result = arg(args, kwargs, 2, "result")
        suite = getattr(getattr(result, "parent", None), "name", "")
        # status: Robot's own PASS/FAIL/SKIP (CrossBridge stores passed/failed, SKIP as failed)
        return {_P.test_id: bounded(f"{suite}::{getattr(result, 'name', '')}"),
                _P.status: bounded(getattr(result, "status", None)) if status else None}

    return call


def _playwright_call(status: bool, step: bool) -> Callable[[tuple[Any, ...], dict[str, Any]], Attrs]:
    """Reporter ``(test, result[, step])``: the test id as CrossBridge builds it, ``file::title``."""

    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        test = arg(args, kwargs, 1, "test")
        where = getattr(getattr(test, "location", None), "file", "")
        # status: Playwright's own (timedOut, not CrossBridge's mapped "timeout")
        return {_P.test_id: bounded(f"{where}::{getattr(test, 'title', '')}"),
                _P.status: bounded(getattr(arg(args, kwargs, 2, "result"), "status", None)) if status else None,
                _P.step: bounded(getattr(arg(args, kwargs, 3, "step"), "title", None)) if step else None}

    return call


def _command_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    """``ProfilingWebDriver._wrap_method(command, method)``: labels the command function it builds."""
    return {_P.command: bounded(arg(args, kwargs, 1, "command"))}


def _create_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    config = arg(args, kwargs, 0, "config")
    return {_P.enabled: getattr(config, "enabled", None),
            _P.profiler_type: bounded(enum_value(getattr(config, "profiler_type", None))),
            _P.level: bounded(enum_value(getattr(config, "level", None)))}


def _create_result(profiler: Any) -> Attrs:
    return {_P.profiler: type(profiler).__name__}


def _profile_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_P.name: bounded(arg(args, kwargs, 0, "name"))}


def _benchmark_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    operation = arg(args, kwargs, 2, "operation")
    return {_P.adapter: bounded(arg(args, kwargs, 1, "adapter_name")),
            _P.operation: bounded(getattr(operation, "__name__", None))}


_BENCHMARK = fields(_P, "iterations", "successful_runs", "failed_runs", mean_ms="avg_duration_ms")


def _benchmark_result(result: Any) -> Attrs:
    return _BENCHMARK(result)


def _benchmark_outcome(result: Any) -> Failure:
    failed = getattr(result, "failed_runs", 0)
    if not failed:
        return None
    text = f"{failed} of {getattr(result, 'iterations', '?')} benchmark iterations failed"
    last = last_error.peek()
    return ("benchmark_failures", f"{text}: {last}" if last else text)


# -- the table ---------------------------------------------------------------------------------------------

_STORAGE = "core.profiling.storage"
_COLLECTOR = "core.profiling.collector"
_HOOKS = "core.profiling.hooks"


def _returned_false(description: str) -> Callable[[Any], Failure]:
    """``False`` → ``returned_false`` with CrossBridge's own ERROR log text of the call, else ``description``."""
    return failed_if_false(description=description, detail=last_error.peek)


def _storage(cls: str, kind: str) -> tuple[Target, ...]:
    # initialize runs on the application's thread at start-up: "quick" (see the module docstring).
    # Batches ride out a database restart on MetricsCollector's flush thread only ("restart": equal jitter until
    # 30 s, ended early by shutdown); a write on any other thread (flush() at exit) keeps the short "default".
    write_retry = (Retry("restart", write=True, worker=Worker("_background_flush")),) if kind == "postgres" else ()
    return (
        Target(_STORAGE, f"{cls}.initialize", "profiling.storage.initialize", call_attributes=_backend(kind),
               outcome=_returned_false(f"{cls}.initialize returned False"),
               invokers=(CAPTURE, Retry("quick"))),
        Target(_STORAGE, f"{cls}.write_events", "profiling.storage.write", call_attributes=_write_call(kind),
               outcome=_returned_false(f"{cls}.write_events returned False (not initialized?)"),
               invokers=(LINK_EVENTS, CAPTURE, *write_retry)),
        Target(_STORAGE, f"{cls}.flush", "profiling.storage.flush", call_attributes=_backend(kind),
               outcome=_returned_false(f"{cls}.flush returned False"), invokers=(CAPTURE,)),
        Target(_STORAGE, f"{cls}.shutdown", "profiling.storage.shutdown", call_attributes=_backend(kind)),
    )


def _record(method: str) -> Target:
    return Target(_COLLECTOR, f"MetricsCollector.{method}", f"profiling.collector.{method}",
                  call_attributes=_record_call(_RECORD_PARAMS[method]))


class ProfilingInstrumentor(CrossBridgeInstrumentor):
    """Traces ``core.profiling``: see the module docstring for what and how."""

    area = "profiling"
    category = "performance"
    targets = (
        *_storage("LocalStorageBackend", "local"),
        *_storage("PostgresStorageBackend", "postgres"),
        *_storage("InfluxDBStorageBackend", "influxdb"),
        Target(_STORAGE, "StorageFactory.from_config", "profiling.storage.create", call_attributes=_factory_call,
               result_attributes=_factory_result),
        Target(_COLLECTOR, "MetricsCollector.start", "profiling.collector.start", call_attributes=_collector_call,
               invokers=(CAPTURE, AfterCall(_start_read))),
        Target(_COLLECTOR, "MetricsCollector.flush", "profiling.collector.flush", call_attributes=_flush_call,
               outcome=_returned_false("MetricsCollector.flush returned False")),
        Target(_COLLECTOR, "MetricsCollector.shutdown", "profiling.collector.shutdown",
               call_attributes=_collector_call, invokers=(AfterCall(_shutdown_read),)),
        ProfilingTarget(_COLLECTOR, "MetricsCollector.collect", "profiling.collect", mode="count",
                        prepare=remembering),
        *(_record(method) for method in _RECORD_PARAMS),
        # Hooks
        *(Target(f"{_HOOKS}.pytest_hook", f"ProfilingPlugin.pytest_runtest_{phase}", f"profiling.pytest.{phase}",
                 call_attributes=_pytest_call) for phase in ("setup", "call", "teardown")),
        ProfilingTarget(f"{_HOOKS}.selenium_hook", "ProfilingWebDriver._wrap_method", "profiling.webdriver.command",
                        mode="count", builds=True, call_attributes=_command_call),
        Target(f"{_HOOKS}.http_hook", "ProfilingSession.request", "profiling.http.request",
               call_attributes=_http_call, result_attributes=_http_result),
        *(Target(f"{_HOOKS}.robot_hook", f"CrossBridgeProfilingListener.{method}", f"profiling.robot.{method}",
                 call_attributes=_robot_call(status)) for method, status in (("start_test", False),
                                                                             ("end_test", True))),
        *(Target(f"{_HOOKS}.playwright_hook", f"CrossBridgePlaywrightReporter.{method}",
                 f"profiling.playwright.{name}", call_attributes=_playwright_call(status, step))
          for method, name, status, step in (("onTestBegin", "test_begin", False, False),
                                             ("onTestEnd", "test_end", True, False),
                                             ("onStepEnd", "step_end", False, True))),
        Target(f"{_HOOKS}.cypress_hook", "create_cypress_profiling_files", "profiling.cypress.create_files"),
        # Profiler API
        Target("core.profiling.factory", "create_profiler", "profiling.profiler.create",
               call_attributes=_create_call, result_attributes=_create_result),
        ProfilingTarget("core.profiling.context", "profile", "profiling.profile", call_attributes=_profile_call,
                        block=True),
        Target("core.profiling.benchmark", "BenchmarkProfiler.benchmark_operation", "profiling.benchmark",
               call_attributes=_benchmark_call, result_attributes=_benchmark_result,
               outcome=_benchmark_outcome, invokers=(CAPTURE,)),
    )

    def _on_instrument(self, **kwargs: Any) -> None:
        self._error_loggers = [logging.getLogger(name) for name in _LOGGERS]
        for logger in self._error_loggers:
            logger.addHandler(last_error)

    def _on_uninstrument(self) -> None:
        for logger in getattr(self, "_error_loggers", []):
            logger.removeHandler(last_error)
        self._error_loggers = []
        contexts.clear()
