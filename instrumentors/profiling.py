"""Profiling instrumentation: CrossBridge's ``core.profiling`` storage, collector, hooks and profiler API.

Enabled by the ``crossbridge_profiling`` entry point under ``opentelemetry-instrument``; in code::

    from crossbridge_otel.instrumentors.profiling import ProfilingInstrumentor
    ProfilingInstrumentor().instrument(tracer_provider=..., meter_provider=...)

Every span carries ``crossbridge.area=profiling``, ``crossbridge.category=performance`` and
``code.function.name``; attribute names below are short for ``crossbridge.profiling.<name>``.

- ``profiling.storage.initialize`` / ``write`` / ``flush`` / ``shutdown`` (``Local``, ``Postgres`` and
  ``InfluxDB`` ``StorageBackend``): ``backend`` (local, postgres, influxdb), ``events`` (batch size of a
  write), ``links``. A ``False`` return → ERROR ``returned_false`` with CrossBridge's own ERROR log text
  (for example ``Failed to initialize PostgreSQL storage: ... Connection refused``). ``initialize`` is
  retried under the ``default`` policy; Postgres ``write_events`` only when retried writes are switched on.
  With the psycopg2 instrumentation on, the backend's queries are ``psycopg2`` child spans (statements
  only: the backend's queries are parameterized and parameters are not captured by default).
- ``profiling.storage.create`` (``StorageFactory.from_config``): ``backend`` requested and created.
- ``profiling.collector.start`` / ``flush`` / ``shutdown`` (``MetricsCollector``): ``backend``,
  ``enabled``, ``sampling_rate``, ``queued``, and at shutdown ``events_collected`` / ``_dropped`` /
  ``_written``. ``start`` returning ``False`` while profiling is enabled → ERROR ``returned_false``.
- ``profiling.collector.record_test_start`` / ``record_test_end`` / ``record_step_start`` /
  ``record_step_end``: ``framework``, ``test_id``, ``step``, ``status``.
- ``MetricsCollector.collect`` and every ``ProfilingWebDriver`` command are high-frequency: counted on the
  enclosing span (``crossbridge.profiling.collect.count``, ``crossbridge.profiling.webdriver.command.count``);
  a span each only with ``CROSSBRIDGE_OTEL_PER_EVENT_SPANS=true``.
- The background flush thread: storage writes run on ``MetricsCollector``'s daemon thread. Each write span
  is the child of ``profiling.collector.start`` (the context the thread was started in, carried by the
  ``opentelemetry-instrumentation-threading`` instrumentation that ``opentelemetry-instrument`` loads) and
  carries a span **link** to every distinct span that was current when one of its events was collected
  (``collect`` remembers it in a bounded side table keyed by the event's identity; nothing is added to
  CrossBridge's objects). So a batch gathered from many tests is linked to each of them.
- Hooks: ``profiling.pytest.setup`` / ``call`` / ``teardown`` (the plugin's hook wrappers, ``test_id`` =
  node id), ``profiling.http.request`` (``ProfilingSession.request``: ``http.request.method``,
  ``http.response.status_code`` — the real code, where CrossBridge records 0 for 4xx/5xx), ``profiling.robot.
  start_test`` / ``end_test``, ``profiling.playwright.test_begin`` / ``test_end`` / ``step_end``.
  ``core.profiling.hooks.cypress_hook`` is a ``SyntaxError`` in CrossBridge: its target is reported
  ``failed`` with that reason by ``crossbridge-otel doctor`` and the import fails exactly as without us.
- Profiler API: ``profiling.profiler.create`` (``create_profiler``: ``profiler_type``, ``level``,
  ``profiler``), ``profiling.profile`` (``context.profile`` and so every ``@profiled`` function: the span
  covers the ``with`` block; ``name``), ``profiling.benchmark`` (``BenchmarkProfiler.benchmark_operation``:
  ``adapter``, ``iterations``, ``successful_runs``, ``failed_runs``, ``mean_ms``; ``failed_runs > 0`` →
  ERROR ``benchmark_failures`` with CrossBridge's last ERROR log text).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import Span

from crossbridge_otel.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.redaction import redact
from crossbridge_otel.retry import retry
from crossbridge_otel.targets import Attrs, Failure, Target, arg, size
from crossbridge_otel.wrapping import mark_failure

from ._profiling_support import after, capturing, contexts, failed_false, last_error, linking, remembering

__all__ = ["ProfilingInstrumentor"]

_P = "crossbridge.profiling."
_MAX_TEXT = 200
_LOGGERS = ("crossbridge.core.profiling.storage", "crossbridge.core.profiling.benchmark")
_BACKENDS = {"LocalStorageBackend": "local", "PostgresStorageBackend": "postgres",
             "InfluxDBStorageBackend": "influxdb", "NoOpStorageBackend": "none"}


def _short(value: Any) -> str | None:
    """A bounded, redacted string for ids and labels (never unbounded text)."""
    if value is None:
        return None
    text = redact(str(value))
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _enum(value: Any) -> Any:
    return getattr(value, "value", value)



def _start_read(span: Span, args: tuple[Any, ...], result: Any) -> None:
    collector = args[0]
    enabled = bool(getattr(getattr(collector, "config", None), "enabled", False))
    if result is False and enabled:
        mark_failure(span, ("returned_false", last_error.peek() or
                            "MetricsCollector.start returned False: the storage backend did not initialize "
                            "or CROSSBRIDGE_PROFILING=false"))


def _shutdown_read(span: Span, args: tuple[Any, ...], result: Any) -> None:
    collector = args[0]
    for name in ("events_collected", "events_dropped", "events_written"):
        value = getattr(collector, name, None)
        if isinstance(value, int):
            span.set_attribute(_P + name, value)


# -- attribute readers ---------------------------------------------------------------------------------


def _backend(kind: str) -> Callable[[tuple[Any, ...], dict[str, Any]], Attrs]:
    static = {_P + "backend": kind}

    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        return static

    return call


def _write_call(kind: str) -> Callable[[tuple[Any, ...], dict[str, Any]], Attrs]:
    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        return {_P + "backend": kind, _P + "events": size(arg(args, kwargs, 1, "events"))}

    return call


def _factory_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    config = arg(args, kwargs, 0, "config")
    return {_P + "backend_requested": _enum(getattr(config, "backend", None)),
            _P + "enabled": getattr(config, "enabled", None)}


def _factory_result(backend: Any) -> Attrs:
    return {_P + "backend": _BACKENDS.get(type(backend).__name__, "other")}


def _collector_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    collector = args[0]
    config = getattr(collector, "config", None)
    return {_P + "backend": _BACKENDS.get(type(getattr(collector, "storage", None)).__name__, "other"),
            _P + "enabled": getattr(config, "enabled", None),
            _P + "sampling_rate": getattr(config, "sampling_rate", None)}


def _flush_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    queue = getattr(args[0], "queue", None)
    return {_P + "queued": queue.qsize() if queue is not None else None}


def _record_call(has_step: bool, has_status: bool) -> Callable[[tuple[Any, ...], dict[str, Any]], Attrs]:
    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        attributes = {_P + "test_id": _short(arg(args, kwargs, 1, "test_id"))}
        index = 2
        if has_step:
            attributes[_P + "step"] = _short(arg(args, kwargs, 2, "step_name"))
            index = 3
        attributes[_P + "framework"] = _short(arg(args, kwargs, index, "framework", "pytest"))
        if has_status:
            attributes[_P + "status"] = _short(arg(args, kwargs, index + 1, "status", "passed"))
        return attributes

    return call


def _pytest_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_P + "test_id": _short(getattr(arg(args, kwargs, 1, "item"), "nodeid", None))}


def _http_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    method = arg(args, kwargs, 1, "method")
    url = str(arg(args, kwargs, 2, "url", ""))
    return {"http.request.method": str(method).upper() if method else None,
            _P + "endpoint": _short(url.split("?", 1)[0])}


def _http_result(response: Any) -> Attrs:
    return {"http.response.status_code": getattr(response, "status_code", None)}


def _robot_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    data = arg(args, kwargs, 1, "data")
    suite = getattr(getattr(data, "parent", None), "name", "") or ""
    result = arg(args, kwargs, 2, "result")
    status = getattr(result, "status", None)
    return {_P + "test_id": _short(f"{suite}::{getattr(data, 'name', '')}"), _P + "status": _short(status)}


def _playwright_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    test = arg(args, kwargs, 1, "test")
    result = arg(args, kwargs, 2, "result")
    step = arg(args, kwargs, 3, "step")
    return {_P + "test_id": _short(getattr(test, "id", None) or getattr(test, "title", None)),
            _P + "status": _short(getattr(result, "status", None)),
            _P + "step": _short(getattr(step, "title", None))}


def _create_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    config = arg(args, kwargs, 0, "config")
    return {_P + "enabled": getattr(config, "enabled", None),
            _P + "profiler_type": _short(_enum(getattr(config, "profiler_type", None))),
            _P + "level": _short(_enum(getattr(config, "level", None)))}


def _create_result(profiler: Any) -> Attrs:
    return {_P + "profiler": type(profiler).__name__}


def _profile_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_P + "name": _short(arg(args, kwargs, 0, "name"))}


def _benchmark_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    operation = arg(args, kwargs, 2, "operation")
    return {_P + "adapter": _short(arg(args, kwargs, 1, "adapter_name")),
            _P + "operation": _short(getattr(operation, "__name__", None))}


def _benchmark_result(result: Any) -> Attrs:
    keys = ("iterations", "successful_runs", "failed_runs", "mean_ms")
    return {_P + key: getattr(result, key, None) for key in keys}


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


def _storage(cls: str, kind: str) -> tuple[Target, ...]:
    write_retry = retry("default", write=True) if kind == "postgres" else None
    return (
        Target(_STORAGE, f"{cls}.initialize", "profiling.storage.initialize", call_attributes=_backend(kind),
               outcome=failed_false(f"{cls}.initialize returned False"),
               invoker=capturing(retry("default"))),
        Target(_STORAGE, f"{cls}.write_events", "profiling.storage.write", call_attributes=_write_call(kind),
               outcome=failed_false(f"{cls}.write_events returned False (not initialized?)"),
               invoker=linking(write_retry)),
        Target(_STORAGE, f"{cls}.flush", "profiling.storage.flush", call_attributes=_backend(kind),
               outcome=failed_false(f"{cls}.flush returned False"), invoker=capturing(None)),
        Target(_STORAGE, f"{cls}.shutdown", "profiling.storage.shutdown", call_attributes=_backend(kind)),
    )


def _record(method: str, step: bool, status: bool) -> Target:
    return Target(_COLLECTOR, f"MetricsCollector.{method}", f"profiling.collector.{method}",
                  call_attributes=_record_call(step, status))


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
               invoker=capturing(after(_start_read))),
        Target(_COLLECTOR, "MetricsCollector.flush", "profiling.collector.flush", call_attributes=_flush_call,
               outcome=failed_false("MetricsCollector.flush returned False")),
        Target(_COLLECTOR, "MetricsCollector.shutdown", "profiling.collector.shutdown",
               call_attributes=_collector_call, invoker=after(_shutdown_read)),
        Target(_COLLECTOR, "MetricsCollector.collect", "profiling.collect", mode="count"),
        _record("record_test_start", step=False, status=False),
        _record("record_test_end", step=False, status=True),
        _record("record_step_start", step=True, status=False),
        _record("record_step_end", step=True, status=False),
        # Hooks
        *(Target(f"{_HOOKS}.pytest_hook", f"ProfilingPlugin.pytest_runtest_{phase}", f"profiling.pytest.{phase}",
                 call_attributes=_pytest_call) for phase in ("setup", "call", "teardown")),
        Target(f"{_HOOKS}.selenium_hook", "ProfilingWebDriver._record", "profiling.webdriver.command",
               mode="count"),
        Target(f"{_HOOKS}.http_hook", "ProfilingSession.request", "profiling.http.request",
               call_attributes=_http_call, result_attributes=_http_result),
        *(Target(f"{_HOOKS}.robot_hook", f"CrossBridgeProfilingListener.{method}", f"profiling.robot.{method}",
                 call_attributes=_robot_call) for method in ("start_test", "end_test")),
        *(Target(f"{_HOOKS}.playwright_hook", f"CrossBridgePlaywrightReporter.{method}",
                 f"profiling.playwright.{name}", call_attributes=_playwright_call)
          for method, name in (("onTestBegin", "test_begin"), ("onTestEnd", "test_end"),
                               ("onStepEnd", "step_end"))),
        Target(f"{_HOOKS}.cypress_hook", "create_cypress_profiling_files", "profiling.cypress.create_files"),
        # Profiler API
        Target("core.profiling.factory", "create_profiler", "profiling.profiler.create",
               call_attributes=_create_call, result_attributes=_create_result),
        Target("core.profiling.context", "profile", "profiling.profile", call_attributes=_profile_call),
        Target("core.profiling.benchmark", "BenchmarkProfiler.benchmark_operation", "profiling.benchmark",
               call_attributes=_benchmark_call, result_attributes=_benchmark_result,
               outcome=_benchmark_outcome, invoker=capturing(None)),
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

    def _wrap(self, raw: Any, target: Target, on_class: bool = False) -> Any:
        """Two CrossBridge shapes the plain table cannot express.

        ``MetricsCollector.collect`` also remembers each event's span context (inside the count wrapper);
        a ``@contextmanager`` function (``context.profile``) is rebuilt around the engine's generator
        wrapper so the span covers the ``with`` block, not the creation of the context manager.
        """
        if target.qualname == "MetricsCollector.collect" and callable(raw):
            return super()._wrap(remembering(raw), target, on_class)
        inner = getattr(raw, "__wrapped__", None)
        if (inspect.isfunction(raw) and inspect.isgeneratorfunction(inner)
                and raw.__code__.co_filename == contextlib.__file__):
            return contextlib.contextmanager(super()._wrap(inner, target, on_class))
        return super()._wrap(raw, target, on_class)
