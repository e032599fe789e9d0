"""Orchestration instrumentation: ``MigrationOrchestrator`` (with its phases) and ``core.orchestration.batch``.

Enabled under ``opentelemetry-instrument`` as ``crossbridge_orchestration``,
its name in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``; in code::

    from crossbridge_otel.instrumentors.orchestration import OrchestrationInstrumentor
    OrchestrationInstrumentor().instrument(tracer_provider=..., meter_provider=...)

Every span carries ``crossbridge.area=orchestration``, ``crossbridge.category`` (``orchestration``;
``general`` for ``core.orchestration.batch``, as CrossBridge's batch loggers) and ``code.function.name``.
Attribute names are short for ``crossbridge.orchestration.<name>`` (``batch.<name>`` for the batch spans).

- ``orchestration.migrate`` (``MigrationOrchestrator.run``, which never raises): ``repo_host``,
  ``migration_type``, ``operation_type``, ``auth_type`` (never the token), ``dry_run``, ``create_pr``,
  ``max_workers``, then ``status``, ``files_discovered``, ``files_transformed``, ``files_failed``,
  ``pr_number``, ``error_code``. ``status`` failed → ERROR ``migration_failed`` with CrossBridge's
  ``error_message``.
- ``orchestration.phase.<phase>`` children (validating, analyzing, transforming, generating, committing),
  switched by CrossBridge's own status updates (``MigrationOrchestrator._update_progress``, which sets
  ``response.status``); the user's ``progress_callback`` is never replaced. The phase running when the
  migration fails is ERROR ``migration_failed``. Thread-pool work of a phase (file reads in TRANSFORMING)
  stays under it through opentelemetry-instrumentation-threading.
- ``orchestration.validate_access`` / ``orchestration.create_pull_request``: exceptions recorded
  (CrossBridge turns them into ``status=FAILED`` above).
- ``orchestration.batch.job`` (``BatchOrchestrator.execute_job``, which never raises): ``tasks``, ``mode``,
  ``max_parallel``, then ``total``, ``completed``, ``failed``, ``skipped``, ``retries`` (counted from the
  tasks: CrossBridge's ``BatchResult.total_retries`` is never filled). A failed task → ERROR
  ``batch_tasks_failed``, even though CrossBridge logs the job at SUCCESS.
- ``orchestration.batch.task`` (``BatchOrchestrator._execute_task``): ``task``, ``feature_type``,
  ``max_retries``, then ``status``, ``retries``. CrossBridge retries a task by calling ``_execute_task``
  again from inside itself (sleeping ``retry_delay * 2**n``): that recursion is *one* span, with one ``retry``
  event per failed attempt (``retry.delay_s`` measured) and ``retry.attempts``; nothing is retried twice. A
  task that stays failed → ERROR ``task_failed`` with its error. PARALLEL/ADAPTIVE task spans, run on the
  pool's threads, are children of the job span.
- ``orchestration.batch.pipeline`` / ``orchestration.batch.feature_groups`` (``FeatureCoordinator``):
  ``features`` / ``groups``, then ``tasks``, ``dependencies``.
- ``orchestration.batch.aggregate`` / ``aggregate_feature`` / ``report`` / ``save`` / ``compare``
  (``BatchResultAggregator``): ``jobs``, ``feature_type``, ``format``, then ``tasks``, ``completed``,
  ``failed``, ``failures``, ``results``, ``report_bytes``, ``file`` (name only), ``assessment``.
- ``orchestration.batch.distributed.start`` / ``stop`` / ``execute`` / ``execute_parallel``
  (``DistributedExecutor``): ``workers``, ``tasks``, ``jobs``, then ``completed``, ``failed``, ``lost``
  (tasks whose result never came back). Failed or lost tasks, failed jobs → ERROR ``batch_tasks_failed``.
  Tasks run in CrossBridge's process pool, where no trace context follows them: they are not traced.

Import cost: importing ``core.orchestration`` makes CrossBridge connect to a database at import time
(``core.observability.hook_sdk``) unless ``CROSSBRIDGE_HOOKS_ENABLED=false``. This module never imports
CrossBridge; it patches through post-import hooks, so it adds nothing to that import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.trace import Span

from crossbridge_otel.patching.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.patching.invokers import AfterCall
from crossbridge_otel.patching.readers import (
    Prefix,
    arg,
    bounded,
    enum_text,
    enum_value,
    fields,
    file_name,
    host_of,
    size,
)
from crossbridge_otel.patching.targets import Attrs, Failure, Target
from crossbridge_otel.retry.observed import AttributeAttempts, ObservedRetry

from ._orchestration_support import (
    PHASES,
    JoinsRecursion,
    PhasedRun,
    PhaseSwitch,
    hand_over,
    judged,
    judgement,
)

__all__ = ["PHASES", "OrchestrationInstrumentor"]

_P = Prefix("crossbridge.orchestration.")
_B = Prefix("crossbridge.orchestration.batch.")
_MIGRATION = "core.orchestration.orchestrator"
_BATCH = "core.orchestration.batch."


# -- MigrationOrchestrator ---------------------------------------------------------------------------

_REQUEST = fields(_P, "dry_run", "create_pr", "max_workers")


def _run_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    request = arg(args, kwargs, 1, "request")
    return {**_REQUEST(request),
            _P.repo_host: host_of(getattr(request, "repo_url", None)),
            _P.migration_type: enum_value(getattr(request, "migration_type", None)),
            _P.operation_type: enum_value(getattr(request, "operation_type", None)),
            _P.auth_type: enum_value(getattr(getattr(request, "auth", None), "auth_type", None))}


def _outcome_of(item: Any) -> Any:
    return item.get("status") if isinstance(item, dict) else getattr(item, "status", None)


def _run_result(response: Any) -> Attrs:
    discovered = getattr(response, "files_discovered", None)
    transformed = getattr(response, "files_transformed", None) or []
    return {_P.status: enum_value(getattr(response, "status", None)),
            _P.files_discovered: sum(v for v in discovered.values() if isinstance(v, int))
            if isinstance(discovered, dict) else None,
            _P.files_transformed: len(transformed),
            _P.files_failed: sum(_outcome_of(r) == "failed" for r in transformed),
            _P.pr_number: getattr(response, "pr_number", None),
            _P.error_code: bounded(getattr(response, "error_code", None), 64)}


def _run_outcome(response: Any) -> Failure:
    if enum_text(getattr(response, "status", "")) != "failed":
        return None
    return "migration_failed", bounded(getattr(response, "error_message", None), 512) or "migration failed"


def _tasks_failed(failed: int, total: Any, first: Any) -> Failure:
    text = f"{failed} of {total} tasks failed" + (f"; {first}" if first else "")
    return "batch_tasks_failed", bounded(text, 512) or "batch_tasks_failed"


# -- BatchOrchestrator -------------------------------------------------------------------------------

def _job_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    job = arg(args, kwargs, 1, "job")
    return {_B.tasks: size(getattr(job, "tasks", None)), _B.mode: enum_value(getattr(job, "execution_mode", None)),
            _B.max_parallel: getattr(job, "max_parallel_tasks", None)}


_JOB_RESULT = fields(_B, total="total_tasks", completed="completed_tasks", skipped="skipped_tasks")


def _job_judge(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> tuple[Attrs, Failure]:
    tasks = getattr(arg(args, kwargs, 1, "job"), "tasks", None) or []
    failed = getattr(result, "failed_tasks", 0) or 0
    attrs = {**_JOB_RESULT(result),
             _B.failed: failed, _B.retries: sum(int(getattr(t, "retry_count", 0) or 0) for t in tasks)}
    errors = getattr(result, "errors", None) or []  # [{"task": "Task 'name': error"}, ...]
    if not failed and not errors:
        return attrs, None
    first = errors[0].get("task") if errors and isinstance(errors[0], dict) else None
    return attrs, _tasks_failed(failed, getattr(result, "total_tasks", "?"), first)


def _task_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    task = arg(args, kwargs, 2, "task")
    return {_B.max_retries: getattr(task, "max_retries", None),
            _B.task: bounded(getattr(task, "name", None), 128),
            _B.feature_type: enum_value(getattr(task, "feature_type", None))}


def _task_attempts(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    return int(getattr(arg(args, kwargs, 2, "task"), "max_retries", 0) or 0) + 1


def _task_after(span: Span, args: tuple[Any, ...], kwargs: dict[str, Any], ok: Any) -> None:
    task = arg(args, kwargs, 2, "task")
    span.set_attributes({_B.status: enum_value(getattr(task, "status", None)),
                         _B.retries: int(getattr(task, "retry_count", 0) or 0)})
    hand_over(None if ok is not False else
              ("task_failed", bounded(getattr(task, "error", None), 512) or "task_failed"))


# -- FeatureCoordinator, BatchResultAggregator -------------------------------------------------------

def _count(index: int, name: str, key: str) -> Callable[[tuple[Any, ...], dict[str, Any]], Attrs]:
    attribute = _B[key]

    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        return {attribute: size(arg(args, kwargs, index, name))}

    return call


def _built_job(job: Any) -> Attrs:
    tasks = getattr(job, "tasks", None) or []
    return {_B.tasks: len(tasks), _B.dependencies: sum(size(getattr(t, "dependencies", None)) or 0 for t in tasks)}


_AGGREGATED = fields(_B, tasks="total_tasks", completed="completed_tasks", failed="failed_tasks")


def _aggregated(result: Any) -> Attrs:
    if not isinstance(result, dict):
        return {}
    return {**_AGGREGATED(result),
            _B.failures: size(result.get("failures"))}


def _by_feature_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_B.jobs: size(arg(args, kwargs, 1, "results")),
            _B.feature_type: enum_value(arg(args, kwargs, 2, "feature_type"))}


def _feature_results(result: Any) -> Attrs:
    return {_B.results: result.get("total_results", 0)} if isinstance(result, dict) else {}


def _report_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_B.jobs: size(arg(args, kwargs, 1, "results")),
            _B.format: bounded(arg(args, kwargs, 2, "report_format", "text"), 16)}


def _compare_result(result: Any) -> Attrs:
    return {_B.assessment: result.get("assessment")} if isinstance(result, dict) else {}


# -- DistributedExecutor -----------------------------------------------------------------------------

def _distributed_judge(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> tuple[Attrs, Failure]:
    tasks = getattr(arg(args, kwargs, 1, "job"), "tasks", None) or []
    failed = [t for t in tasks if enum_text(getattr(t, "status", None)) == "failed"]
    done = sum(enum_text(getattr(t, "status", None)) in ("completed", "failed") for t in tasks)
    lost = len(tasks) - done
    attrs = {_B.completed: done - len(failed), _B.failed: len(failed), _B.lost: lost}
    if not failed and not lost:
        return attrs, None
    first = f"{getattr(failed[0], 'name', '?')}: {getattr(failed[0], 'error', '')}" if failed else (
        f"{lost} task result(s) never came back (CrossBridge logs 'Error processing task result')")
    return attrs, _tasks_failed(len(failed) + lost, len(tasks), first)


def _parallel_jobs_judge(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> tuple[Attrs, Failure]:
    entries = [r for r in result or [] if isinstance(r, dict)]
    bad = [r for r in entries if r.get("error") or r.get("failed_tasks")]
    attrs = {_B.failed_jobs: len(bad)}
    if not bad:
        return attrs, None
    detail = bad[0].get("error") or f"{bad[0].get('failed_tasks')} failed task(s)"
    return attrs, ("batch_tasks_failed", bounded(f"{len(bad)} of {len(entries)} jobs failed; {detail}", 512) or "")


def _workers_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_B.workers: getattr(getattr(args[0], "config", None), "worker_count", None)}


_ORCH, _COORD, _AGG, _DIST = (_BATCH + m for m in ("orchestrator", "coordinator", "aggregator", "distributed"))


class OrchestrationInstrumentor(CrossBridgeInstrumentor):
    """Traces ``core.orchestration``: see the module docstring for the table."""

    area = "orchestration"
    category = "orchestration"
    module_categories = {"core.orchestration.batch": "general"}
    targets = (
        Target(_MIGRATION, "MigrationOrchestrator.run", "orchestration.migrate", call_attributes=_run_call,
               result_attributes=_run_result, outcome=_run_outcome, invokers=(PhasedRun(_run_outcome),)),
        PhaseSwitch(_MIGRATION, "MigrationOrchestrator._update_progress", "orchestration.phase"),
        Target(_MIGRATION, "MigrationOrchestrator._validate_repository_access", "orchestration.validate_access"),
        Target(_MIGRATION, "MigrationOrchestrator._create_pull_request", "orchestration.create_pull_request"),
        Target(_ORCH, "BatchOrchestrator.execute_job", "orchestration.batch.job", call_attributes=_job_call,
               outcome=judgement, invokers=(judged(_job_judge),)),
        JoinsRecursion(_ORCH, "BatchOrchestrator._execute_task", "orchestration.batch.task",
                       call_attributes=_task_call, outcome=judgement,
                       invokers=(ObservedRetry("BatchOrchestrator task retry", _task_attempts,
                                               AttributeAttempts(2, "task", "callable")),
                                 AfterCall(_task_after))),
        Target(_COORD, "FeatureCoordinator.create_feature_pipeline", "orchestration.batch.pipeline",
               call_attributes=_count(2, "features", "features"), result_attributes=_built_job),
        Target(_COORD, "FeatureCoordinator.create_parallel_feature_job", "orchestration.batch.feature_groups",
               call_attributes=_count(2, "feature_groups", "groups"), result_attributes=_built_job),
        Target(_AGG, "BatchResultAggregator.aggregate_results", "orchestration.batch.aggregate",
               call_attributes=_count(1, "results", "jobs"), result_attributes=_aggregated),
        Target(_AGG, "BatchResultAggregator.aggregate_by_feature", "orchestration.batch.aggregate_feature",
               call_attributes=_by_feature_call, result_attributes=_feature_results),
        Target(_AGG, "BatchResultAggregator.generate_report", "orchestration.batch.report",
               call_attributes=_report_call, result_attributes=lambda r: {_B.report_bytes: size(r)}),
        Target(_AGG, "BatchResultAggregator.save_results", "orchestration.batch.save",
               call_attributes=_count(1, "results", "jobs"), result_attributes=lambda p: {_B.file: file_name(p)}),
        Target(_AGG, "BatchResultAggregator.compare_results", "orchestration.batch.compare",
               result_attributes=_compare_result),
        Target(_DIST, "DistributedExecutor.start", "orchestration.batch.distributed.start",
               call_attributes=_workers_call),
        Target(_DIST, "DistributedExecutor.stop", "orchestration.batch.distributed.stop"),
        Target(_DIST, "DistributedExecutor.execute_distributed", "orchestration.batch.distributed.execute",
               call_attributes=_job_call, outcome=judgement, invokers=(judged(_distributed_judge),)),
        Target(_DIST, "DistributedExecutor.execute_parallel_jobs", "orchestration.batch.distributed.execute_parallel",
               call_attributes=_count(1, "jobs", "jobs"), outcome=judgement,
               invokers=(judged(_parallel_jobs_judge),)),
    )
