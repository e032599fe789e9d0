"""Execution instrumentation: ``core.execution`` (executor, adapters, strategies, results), pytest adapter.

Enabled under ``opentelemetry-instrument`` as ``crossbridge_execution``,
its name in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``; in code::

    from crossbridge_otel.instrumentors.execution import ExecutionInstrumentor
    ExecutionInstrumentor().instrument(tracer_provider=..., meter_provider=...)

Every span carries ``crossbridge.area=execution``, ``crossbridge.category`` (``execution``;
``orchestration`` for ``core.execution.orchestration.orchestrator``) and ``code.function.name``.
Attribute names are short for ``crossbridge.execution.<name>``. What is traced:

- ``execution.run`` (``TestExecutor.execute``): ``framework``, ``strategy``, ``tests_requested``,
  ``retry_failed``, then ``status``, ``total``, ``passed``, ``failed``, ``skipped``, ``errors``, ``workers``,
  ``execution_errors`` (count). It never raises: ``status`` error/timeout/cancelled → ERROR
  ``execution_error`` with the first of CrossBridge's ``execution_errors``; ``failed`` → ``tests_failed``.
- ``execution.retry_failed`` (``TestExecutor._retry_failed_tests``, CrossBridge's re-run loop):
  ``retry_rounds``, ``tests``, ``passed_on_retry``.
- ``execution.adapter.get`` (``AdapterRegistry.get_adapter``): ``framework``, ``adapter`` (class name);
  ``ValueError: Unknown framework`` recorded and re-raised.
- ``execution.adapter.discover`` / ``execution.adapter.run`` (``PytestAdapter.discover_tests`` /
  ``run_tests``): ``adapter``, ``tests_discovered``; ``tests_requested``, ``tags``, ``total``, ``passed``,
  ``failed``, ``skipped``, ``errors``; a ``fail``/``error`` result → ``tests_failed`` (its message). Child:
  ``execution.command`` per pytest process.
- ``execution.strategy`` (``Sequential/Parallel/BatchedParallel/Adaptive/FailFastStrategy.execute``):
  ``strategy`` (sequential, parallel, batched, adaptive, fail_fast), ``tests``, ``workers``,
  ``batch_size`` (batched), ``total``, ``failed``; adaptive has the strategy it chose as child.
- ``execution.retry_test`` (``RetryStrategy.execute_with_retry``, a built-in retry): ``max_retries``,
  ``status``, ``retry_count``, ``flaky``; one ``retry`` event per failed attempt (a FAILED/ERROR result or
  an exception, which CrossBridge lets escape) and ``retry.attempts``; still failing → ``test_failed``.
- ``execution.results.normalize`` (``ResultNormalizer.normalize``): ``results.file`` (file name only),
  ``results.requested_framework``, ``results.framework``, ``results.total/passed/failed/skipped/errors/
  flaky``; ``None`` → ``normalize_failed``. ``execution.results.normalize_batch``: ``results.files``,
  ``results.runs``; fewer runs than files → ``normalize_failed``.
- ``execution.results.aggregate`` (``UnifiedResultAggregator.aggregate_run``): ``results.files``, the
  totals, ``results.coverage``.
- ``execution.results.compare`` (``ResultComparer.compare``): ``compare.new_tests``, ``removed_tests``,
  ``newly_failing``, ``newly_passing``, ``newly_flaky``, ``slower``, ``faster``, ``regressions``,
  ``improvements``, ``total_changes`` (a comparison is not an error, whatever it finds).
- ``execution.results.trend`` / ``trends`` / ``anomalies`` (``TrendAnalyzer.analyze_metric`` /
  ``analyze_all_metrics`` / ``detect_anomalies``): ``trend.runs``, ``trend.metric``, ``trend.points``,
  ``trend.direction``, ``trend.strength``, ``trend.metrics``, ``trend.degrading``, ``trend.anomalies``.
- ``execution.orchestrator.execute`` / ``plan`` / ``run`` (``core.execution.orchestration``'s
  ``ExecutionOrchestrator``, category ``orchestration``): ``framework``, ``strategy``, ``environment``,
  ``max_tests``, ``dry_run``, ``tests``, then ``status``, ``total``/``passed``/``failed``/``skipped``/
  ``errors``. ``status`` failed → ``execution_failed`` ("Command failed with code N", a timeout); failed
  tests under CrossBridge's COMPLETED → ``tests_failed``. Exit code: on the ``execution.command`` child.

Subprocesses: the pytest adapter (and the orchestration adapters) run commands with ``subprocess.run``;
through :mod:`crossbridge_otel.patching.subprocesses` each one is an ``execution.command`` child span (redacted
command line, exit code) and the child gets ``TRACEPARENT``/``TRACESTATE``, so an instrumented test
process joins the trace. Thread pools (``ParallelStrategy``, ``BatchedParallelStrategy``): the worker
calls stay in the trace through ``opentelemetry-instrumentation-threading`` (a dependency of this
distribution, loaded by ``opentelemetry-instrument``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from opentelemetry.trace import Span

from crossbridge_otel.patching.invokers import AfterCall
from crossbridge_otel.patching.readers import (
    Prefix,
    arg,
    bounded,
    enum_text,
    enum_value,
    failed_if_none,
    fields,
    file_name,
    size,
)
from crossbridge_otel.patching.targets import Attrs, Failure, Target
from crossbridge_otel.patching.wrapping import mark_failure
from crossbridge_otel.retry.observed import ArgumentAttempts, ObservedRetry
from crossbridge_otel.retry.ratelimit import RateLimit

from ._support import RunsCommands

__all__ = ["ExecutionInstrumentor"]

_P = Prefix("crossbridge.execution.")
_R = Prefix("crossbridge.execution.results.")
_EXECUTOR = "core.execution.executor"
_RESULTS = "core.execution.results."
_ORCH = "core.execution.orchestration.orchestrator"
_FAILED_STATES = {"failed", "error", "timeout", "cancelled"}


# -- TestExecutor ------------------------------------------------------------------------------------

def _execute_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    request = arg(args, kwargs, 1, "request")
    return {_P.framework: bounded(getattr(request, "framework", None), 64),
            _P.strategy: enum_value(getattr(request, "strategy", None)),
            _P.tests_requested: size(getattr(request, "tests", None)),
            _P.retry_failed: getattr(request, "retry_failed", None)}


_SUMMARY = fields(_P, "passed", "failed", "skipped", "errors", total="total_tests", workers="workers_used")


def _summary_attrs(summary: Any) -> Attrs:
    return {**_SUMMARY(summary),
            _P.status: enum_text(getattr(summary, "status", None)),
            _P.execution_errors: size(getattr(summary, "execution_errors", None))}


def _summary_outcome(summary: Any) -> Failure:
    status = enum_text(getattr(summary, "status", None))
    if status in ("error", "timeout", "cancelled"):
        errors = getattr(summary, "execution_errors", None) or []
        text = errors[0] if errors else f"{getattr(summary, 'errors', 0)} test(s) ended in error"
        return "execution_error", bounded(text, 512) or ""
    if status == "failed":
        failed, total = getattr(summary, "failed", 0), getattr(summary, "total_tests", 0)
        return "tests_failed", f"{failed} of {total} tests failed"
    return None


def _retry_failed_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    request = arg(args, kwargs, 2, "request")
    return {_P.retry_rounds: getattr(request, "retry_failed", None),
            _P.tests: size(arg(args, kwargs, 3, "failed_results"))}


def _retry_failed_result(results: Any) -> Attrs:
    passed = [r for r in results or [] if enum_text(getattr(r, "status", None)) == "passed"]
    return {_P.passed_on_retry: len(passed)}


# -- adapters ----------------------------------------------------------------------------------------

def _get_adapter_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_P.framework: bounded(arg(args, kwargs, 1, "framework"), 64)}


def _get_adapter_result(adapter: Any) -> Attrs:
    return {_P.adapter: type(adapter).__name__}


def _adapter_call(name: str) -> Any:
    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        return {_P.adapter: name, _P.tests_requested: size(arg(args, kwargs, 1, "tests")),
                _P.tags: size(arg(args, kwargs, 2, "tags"))}

    return call


def _discover_result(tests: Any) -> Attrs:
    return {_P.tests_discovered: size(tests)}


def _adapter_results(results: Any) -> Attrs:
    counts = Counter(str(getattr(r, "status", "")).lower() for r in results or [])
    return {_P.total: size(results), _P.passed: counts["pass"], _P.failed: counts["fail"], _P.skipped: counts["skip"],
            _P.errors: counts["error"]}


def _adapter_outcome(results: Any) -> Failure:
    bad = [r for r in results or [] if str(getattr(r, "status", "")).lower() in ("fail", "error")]
    if not bad:
        return None
    first = bounded(getattr(bad[0], "message", "") or getattr(bad[0], "name", ""), 512)
    return "tests_failed", f"{len(bad)} failed: {first}"


# -- strategies --------------------------------------------------------------------------------------

def _strategy_call(name: str) -> Any:
    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        allocation = getattr(args[0], "resource_allocation", None)
        return {_P.strategy: name, _P.tests: size(arg(args, kwargs, 1, "tests")),
                _P.workers: getattr(allocation, "max_workers", None),
                _P.batch_size: getattr(allocation, "batch_size", None) if name == "batched" else None}

    return call


def _strategy_result(results: Any) -> Attrs:
    statuses = [enum_text(getattr(r, "status", None)) for r in results or []]
    return {_P.total: len(statuses), _P.failed: sum(s in _FAILED_STATES for s in statuses)}


def _test_result_failed(result: Any) -> tuple[str, str] | None:
    status = enum_text(getattr(result, "status", None))
    if status in ("failed", "error"):
        text = getattr(result, "error_message", None) or getattr(result, "message", None) or status
        return f"test_{status}", bounded(text, 512) or status
    return None


def _retry_strategy_attempts(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    return int(getattr(args[0], "max_retries", 0)) + 1


def _retry_strategy_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_P.max_retries: getattr(args[0], "max_retries", None)}


def _retry_strategy_result(result: Any) -> Attrs:
    return {_P.retry_count: getattr(result, "retry_count", None), _P.flaky: getattr(result, "is_flaky", None),
            _P.status: enum_text(getattr(result, "status", None))}


def _retry_strategy_outcome(result: Any) -> Failure:
    found = _test_result_failed(result)
    return ("test_failed", found[1]) if found else None


# -- results -----------------------------------------------------------------------------------------

_RUN = fields(_R, "passed", "failed", "skipped", "errors", "flaky", total="total_tests", coverage="overall_coverage")


def _run_attrs(run: Any) -> Attrs:
    if run is None:
        return {}
    metadata = getattr(run, "metadata", None)
    return {**_RUN(run),
            _R.framework: enum_value(getattr(metadata, "framework", None))}


def _normalize_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_R.file: file_name(arg(args, kwargs, 1, "result_file")),
            _R.requested_framework: enum_value(arg(args, kwargs, 2, "framework"))}


_NORMALIZE_NONE = failed_if_none("normalize_failed", "the result file could not be normalised (missing, unknown "
                                 "format or unparsable; CrossBridge logs the reason on "
                                 "crossbridge.core.execution.results.normalizer)")


def _files_call(index: int, name: str) -> Any:
    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        return {_R.files: size(arg(args, kwargs, index, name))}

    return call


def _normalize_batch_read(span: Span, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    files, runs = size(arg(args, kwargs, 1, "result_files")), size(result)
    if runs is not None:
        span.set_attribute(_R.runs, runs)
    if files is not None and runs is not None and runs < files:
        mark_failure(span, ("normalize_failed", f"{files - runs} of {files} result files not normalised"))


_C = Prefix("crossbridge.execution.compare.")
_COMPARE_COUNTS = fields(_C, "regressions", "improvements", "total_changes")
# attribute -> ComparisonResult list field (the attribute is its size)
_COMPARE_SIZES = tuple((_C[key], field) for key, field in (
    ("new_tests", "new_tests"), ("removed_tests", "removed_tests"), ("newly_failing", "newly_failing"),
    ("newly_passing", "newly_passing"), ("newly_flaky", "newly_flaky"), ("slower", "slower_tests"),
    ("faster", "faster_tests")))


def _compare_result(cmp: Any) -> Attrs:
    return {**{key: size(getattr(cmp, field, None)) for key, field in _COMPARE_SIZES}, **_COMPARE_COUNTS(cmp)}


_T = Prefix("crossbridge.execution.trend.")


def _trend_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_T.runs: size(arg(args, kwargs, 1, "runs")), _T.metric: enum_value(arg(args, kwargs, 2, "metric"))}


def _trend_result(data: Any) -> Attrs:
    return {_T.direction: getattr(data, "trend_direction", None), _T.strength: getattr(data, "trend_strength", None),
            _T.points: size(getattr(data, "data_points", None))}


def _trends_result(result: Any) -> Attrs:
    if not isinstance(result, dict):
        return {}
    return {_T.metrics: len(result),
            _T.degrading: sum(getattr(d, "trend_direction", "") == "degrading" for d in result.values())}


def _anomalies_result(result: Any) -> Attrs:
    return {_T.anomalies: size(result)}


# -- core.execution.orchestration --------------------------------------------------------------------

def _orch_request_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    request = arg(args, kwargs, 1, "request")
    return {_P.max_tests: getattr(request, "max_tests", None), _P.dry_run: getattr(request, "dry_run", None),
            _P.framework: bounded(getattr(request, "framework", None), 64),
            _P.strategy: enum_value(getattr(request, "strategy", None)),
            _P.environment: bounded(getattr(request, "environment", None), 32)}


def _orch_plan_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    plan = arg(args, kwargs, 1, "plan")
    return {_P.framework: bounded(getattr(plan, "framework", None), 64),
            _P.strategy: enum_value(getattr(plan, "strategy", None)),
            _P.tests: size(getattr(plan, "selected_tests", None))}


def _orch_plan_result(plan: Any) -> Attrs:
    return {_P.tests: size(getattr(plan, "selected_tests", None)),
            _P.skipped: size(getattr(plan, "skipped_tests", None))}


# attribute -> ExecutionResult list field (the attribute is its size)
_ORCH_COUNTS = tuple((_P[key], field) for key, field in (
    ("total", "executed_tests"), ("passed", "passed_tests"), ("failed", "failed_tests"), ("skipped", "skipped_tests"),
    ("errors", "error_tests")))


def _orch_result(result: Any) -> Attrs:
    # CrossBridge's ExecutionResult keeps no exit code: the execution.command child span has process.exit.code.
    return {_P.status: enum_text(getattr(result, "status", None)),
            **{key: size(getattr(result, field, None)) for key, field in _ORCH_COUNTS}}


def _orch_outcome(result: Any) -> Failure:
    if enum_text(getattr(result, "status", None)) == "failed":
        return "execution_failed", bounded(getattr(result, "error_message", None), 512) or "execution failed"
    bad = (getattr(result, "failed_tests", None) or []) + (getattr(result, "error_tests", None) or [])
    if bad:  # CrossBridge leaves status COMPLETED when the framework ran and tests failed
        return "tests_failed", bounded(f"{len(bad)} failed: {bad[0]}", 512) or "tests_failed"
    return None


_STRATEGIES = {"Sequential": "sequential", "Parallel": "parallel", "BatchedParallel": "batched",
               "Adaptive": "adaptive", "FailFast": "fail_fast"}


class ExecutionInstrumentor(RunsCommands):
    """Traces ``core.execution`` and the pytest adapter: see the module docstring for the table."""

    area = "execution"
    category = "execution"
    module_categories = {_ORCH: "orchestration"}
    targets = (
        Target(_EXECUTOR, "TestExecutor.execute", "execution.run", call_attributes=_execute_call,
               result_attributes=_summary_attrs, outcome=_summary_outcome),
        Target(_EXECUTOR, "TestExecutor._retry_failed_tests", "execution.retry_failed",
               call_attributes=_retry_failed_call, result_attributes=_retry_failed_result),
        Target("core.execution.adapter_registry", "AdapterRegistry.get_adapter", "execution.adapter.get",
               call_attributes=_get_adapter_call, result_attributes=_get_adapter_result),
        Target("adapters.pytest.adapter", "PytestAdapter.discover_tests", "execution.adapter.discover",
               call_attributes=_adapter_call("pytest"), result_attributes=_discover_result),
        Target("adapters.pytest.adapter", "PytestAdapter.run_tests", "execution.adapter.run",
               call_attributes=_adapter_call("pytest"), result_attributes=_adapter_results,
               outcome=_adapter_outcome, invokers=(RateLimit("execution"),)),
        *(Target("core.execution.strategies", f"{name}Strategy.execute", "execution.strategy",
                 call_attributes=_strategy_call(short), result_attributes=_strategy_result)
          for name, short in _STRATEGIES.items()),
        Target("core.execution.strategies", "RetryStrategy.execute_with_retry", "execution.retry_test",
               call_attributes=_retry_strategy_call, result_attributes=_retry_strategy_result,
               outcome=_retry_strategy_outcome,
               invokers=(ObservedRetry("RetryStrategy.execute_with_retry", _retry_strategy_attempts,
                                       ArgumentAttempts(2, "executor_func", failure=_test_result_failed)),)),
        Target(_RESULTS + "normalizer", "ResultNormalizer.normalize", "execution.results.normalize",
               call_attributes=_normalize_call, result_attributes=_run_attrs,
               outcome=_NORMALIZE_NONE),
        Target(_RESULTS + "normalizer", "ResultNormalizer.normalize_batch",
               "execution.results.normalize_batch",
               call_attributes=_files_call(1, "result_files"), invokers=(AfterCall(_normalize_batch_read),)),
        Target(_RESULTS + "result_collector", "UnifiedResultAggregator.aggregate_run",
               "execution.results.aggregate", call_attributes=_files_call(1, "result_files"),
               result_attributes=_run_attrs),
        Target(_RESULTS + "result_comparer", "ResultComparer.compare", "execution.results.compare",
               result_attributes=_compare_result),
        Target(_RESULTS + "trend_analyzer", "TrendAnalyzer.analyze_metric", "execution.results.trend",
               call_attributes=_trend_call, result_attributes=_trend_result),
        Target(_RESULTS + "trend_analyzer", "TrendAnalyzer.analyze_all_metrics", "execution.results.trends",
               call_attributes=_trend_call, result_attributes=_trends_result),
        Target(_RESULTS + "trend_analyzer", "TrendAnalyzer.detect_anomalies", "execution.results.anomalies",
               call_attributes=_trend_call, result_attributes=_anomalies_result),
        Target(_ORCH, "ExecutionOrchestrator.execute", "execution.orchestrator.execute",
               call_attributes=_orch_request_call, result_attributes=_orch_result, outcome=_orch_outcome),
        Target(_ORCH, "ExecutionOrchestrator.plan", "execution.orchestrator.plan",
               call_attributes=_orch_request_call, result_attributes=_orch_plan_result),
        Target(_ORCH, "ExecutionOrchestrator.run", "execution.orchestrator.run",
               call_attributes=_orch_plan_call, result_attributes=_orch_result, outcome=_orch_outcome),
    )
