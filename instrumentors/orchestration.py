"""Orchestration instrumentation: ``MigrationOrchestrator`` (with its phases) and ``BatchOrchestrator``.

Enabled by the ``crossbridge_orchestration`` entry point under ``opentelemetry-instrument``; in code::

    from crossbridge_otel.instrumentors.orchestration import OrchestrationInstrumentor
    OrchestrationInstrumentor().instrument(tracer_provider=..., meter_provider=...)

Every span carries ``crossbridge.area=orchestration``, ``crossbridge.category`` (``orchestration``;
``general`` for ``core.orchestration.batch``, as CrossBridge's batch loggers) and ``code.function.name``.
Attribute names are short for ``crossbridge.orchestration.<name>``. What is traced:

- ``orchestration.migrate`` (``MigrationOrchestrator.run``, which never raises): ``repo_host``,
  ``migration_type``, ``auth_type`` (never the token), ``dry_run``, ``create_pr``, ``max_workers``, then
  ``status``, ``files_discovered``, ``files_transformed``, ``files_failed``, ``files_generated``,
  ``pr_number``. ``status`` failed → ERROR ``migration_failed`` with CrossBridge's ``error_message``.
- ``orchestration.phase.<phase>`` children, one per phase (validating, analyzing, transforming,
  generating, committing), opened and closed from the progress updates CrossBridge makes on each status
  change (the caller's own ``progress_callback`` still receives every update). The phase running when the
  migration fails is ERROR ``migration_failed``. The TRANSFORMING phase's thread-pool work (file reads,
  ``translation.translate``) stays under it through opentelemetry-instrumentation-threading.
- ``orchestration.validate_access`` / ``orchestration.create_pull_request``
  (``_validate_repository_access`` / ``_create_pull_request``): exceptions recorded (CrossBridge turns them
  into ``status=FAILED`` above).
- ``orchestration.batch.job`` (``BatchOrchestrator.execute_job``, which never raises): ``tasks``, ``mode``,
  ``max_parallel``, then ``total``, ``completed``, ``failed``, ``skipped``, ``retries``, ``peak_parallel``.
  A failed task → ERROR ``batch_tasks_failed`` (how many, the first task and its error), even though
  CrossBridge logs the job at SUCCESS.
- ``orchestration.batch.task`` (``BatchOrchestrator._execute_task``): ``task``, ``feature_type``,
  ``max_retries``, ``status``, ``attempts``. CrossBridge's own task retry (sleeping 2, 4, 8 s) is shown as
  one ``retry`` event per failed attempt (``retry.delay_s`` measured) and ``retry.attempts``; nothing is
  retried twice. A task that stays failed → ERROR ``task_failed`` with its error. In PARALLEL/ADAPTIVE
  mode the task spans, running on the pool's threads, are children of the job span.

Import cost: importing ``core.orchestration`` makes CrossBridge connect to a database at import time
(``core.observability.hook_sdk``) unless ``CROSSBRIDGE_HOOKS_ENABLED=false``. This module never imports
CrossBridge; it patches through post-import hooks, so it adds nothing to that import.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any
from urllib.parse import urlparse

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import Span, Tracer

from crossbridge_otel._guard import report_failure
from crossbridge_otel.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.targets import Attrs, Failure, Invoker, InvokerEnv, Target, arg, size
from crossbridge_otel.wrapping import mark_failure

from ._support import bounded, enum_value, observer

__all__ = ["PHASES", "OrchestrationInstrumentor"]

_P = "crossbridge.orchestration."
_B = "crossbridge.orchestration.batch."
_MIGRATION = "core.orchestration.orchestrator"
_BATCH = "core.orchestration.batch.orchestrator"
PHASES = ("validating", "analyzing", "transforming", "generating", "committing")


class _State:
    """The instrumentor's tracer, for the phase spans (set in ``_on_instrument``)."""

    tracer: Tracer | None = None


# -- MigrationOrchestrator ---------------------------------------------------------------------------

def _host(url: Any) -> str | None:
    try:
        return urlparse(str(url)).hostname
    except ValueError:
        return None


def _run_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    request = arg(args, kwargs, 1, "request")
    auth = getattr(request, "auth", None)
    return {
        _P + "repo_host": _host(getattr(request, "repo_url", None)),
        _P + "migration_type": enum_value(getattr(request, "migration_type", None)),
        _P + "auth_type": enum_value(getattr(auth, "auth_type", None)),
        _P + "dry_run": getattr(request, "dry_run", None),
        _P + "create_pr": getattr(request, "create_pr", None),
        _P + "max_workers": getattr(request, "max_workers", None),
    }


def _run_result(response: Any) -> Attrs:
    return {
        _P + "status": enum_value(getattr(response, "status", None)),
        _P + "files_discovered": getattr(response, "files_discovered", None),
        _P + "files_transformed": getattr(response, "files_transformed", None),
        _P + "files_failed": getattr(response, "files_failed", None),
        _P + "files_generated": size(getattr(response, "files_generated", None)),
        _P + "pr_number": getattr(response, "pr_number", None),
    }


def _run_outcome(response: Any) -> Failure:
    if str(enum_value(getattr(response, "status", ""))).lower() != "failed":
        return None
    return "migration_failed", bounded(getattr(response, "error_message", None), 512) or "migration failed"


class _Phases:
    """One child span per migration phase, switched on CrossBridge's progress updates."""

    def __init__(self, tracer: Tracer, static: Attrs) -> None:
        self.tracer = tracer
        self.static = dict(static)
        self.name: str | None = None
        self.span: Span | None = None
        self.token: object | None = None

    def progress(self, message: Any, status: Any) -> None:
        value = str(enum_value(status)).lower()
        if value == self.name:
            return
        self.close(("migration_failed", str(message)) if value == "failed" else None)
        if value in PHASES:
            self.name = value
            self.span = self.tracer.start_span(f"orchestration.phase.{value}",
                                               attributes={**self.static, _P + "phase": value})
            self.token = context_api.attach(trace_api.set_span_in_context(self.span))

    def close(self, failure: tuple[str, str] | None = None) -> None:
        span, token = self.span, self.token
        self.span, self.token, self.name = None, None, None
        if span is None:
            return
        if failure is not None:
            mark_failure(span, (failure[0], bounded(failure[1], 512) or failure[0]))
        if token is not None:
            context_api.detach(token)  # type: ignore[arg-type]
        span.end()


def _run_invoker(target: Target, env: InvokerEnv) -> Invoker | None:
    """Wraps the progress callback CrossBridge calls on every status change to drive the phase spans."""
    static = dict(env.start_attributes)

    def invoke(original: Any, args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
        tracer = _State.tracer
        if tracer is None:
            return original(*args, **kwargs)
        phases = _Phases(tracer, static)
        user_callback = arg(args, kwargs, 2, "progress_callback")

        def progress_callback(message: Any, status: Any) -> None:
            try:
                phases.progress(message, status)
            except Exception as exc:
                report_failure("migration phase spans", exc)
            if user_callback is not None:
                user_callback(message, status)

        if len(args) > 2:
            args = (*args[:2], progress_callback, *args[3:])
        else:
            kwargs = {**kwargs, "progress_callback": progress_callback}
        try:
            return original(*args, **kwargs)
        finally:
            try:
                phases.close()
            except Exception as exc:
                report_failure("migration phase spans", exc)

    return invoke


# -- BatchOrchestrator -------------------------------------------------------------------------------

def _job_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    job = arg(args, kwargs, 1, "job")
    return {_B + "tasks": size(getattr(job, "tasks", None)),
            _B + "mode": enum_value(getattr(job, "execution_mode", None)),
            _B + "max_parallel": getattr(job, "max_parallel_tasks", None)}


def _job_result(result: Any) -> Attrs:
    return {
        _B + "total": getattr(result, "total_tasks", None),
        _B + "completed": getattr(result, "completed_tasks", None),
        _B + "failed": getattr(result, "failed_tasks", None),
        _B + "skipped": getattr(result, "skipped_tasks", None),
        _B + "retries": getattr(result, "total_retries", None),
        _B + "peak_parallel": getattr(result, "peak_parallel_tasks", None),
    }


def _job_outcome(result: Any) -> Failure:
    failed = getattr(result, "failed_tasks", 0) or 0
    errors = getattr(result, "errors", None) or []
    if not failed and not errors:
        return None
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    detail = f"{first.get('task', '?')}: {first.get('error', '')}" if first else ""
    return "batch_tasks_failed", bounded(f"{failed} of {getattr(result, 'total_tasks', '?')} tasks failed; {detail}",
                                         512) or "batch_tasks_failed"


# The failed task's own error text, handed from the invoker to the outcome of the same call (same thread).
_task_error: ContextVar[str | None] = ContextVar("crossbridge_otel_task_error", default=None)


def _task_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    task = arg(args, kwargs, 1, "task")
    return {_B + "task": bounded(getattr(task, "name", None), 128),
            _B + "feature_type": enum_value(getattr(task, "feature_type", None)),
            _B + "max_retries": getattr(task, "max_retries", None)}


def _task_result(status: Any) -> Attrs:
    return {_B + "status": enum_value(status)}


def _task_outcome(status: Any) -> Failure:
    error = _task_error.get()
    _task_error.set(None)
    if str(enum_value(status)).lower() != "failed":
        return None
    return "task_failed", bounded(error, 512) or "task_failed"


def _task_invoker(target: Target, env: InvokerEnv) -> Invoker | None:
    """Observes CrossBridge's task retry: every call of ``task.callable`` is one attempt."""

    def invoke(original: Any, args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
        task = arg(args, kwargs, 1, "task")
        func: Any = getattr(task, "callable", None)
        attempts = observer(span, int(getattr(task, "max_retries", 0) or 0) + 1, target, env)
        swapped = callable(func)
        if swapped:
            task.callable = attempts.wrap(func)
        try:
            status = original(*args, **kwargs)
            _task_error.set(getattr(task, "error", None))
            span.set_attribute(_B + "attempts", int(getattr(task, "attempts", 0) or 0))
            return status
        finally:
            if swapped:
                task.callable = func
            attempts.finish()

    return invoke


class OrchestrationInstrumentor(CrossBridgeInstrumentor):
    """Traces ``core.orchestration``: see the module docstring for the table."""

    area = "orchestration"
    category = "orchestration"
    module_categories = {"core.orchestration.batch": "general"}
    observed_retries = {_BATCH: "BatchOrchestrator task retry (retry events)"}
    targets = (
        Target(_MIGRATION, "MigrationOrchestrator.run", "orchestration.migrate", call_attributes=_run_call,
               result_attributes=_run_result, outcome=_run_outcome, invoker=_run_invoker),
        Target(_MIGRATION, "MigrationOrchestrator._validate_repository_access", "orchestration.validate_access"),
        Target(_MIGRATION, "MigrationOrchestrator._create_pull_request", "orchestration.create_pull_request"),
        Target(_BATCH, "BatchOrchestrator.execute_job", "orchestration.batch.job", call_attributes=_job_call,
               result_attributes=_job_result, outcome=_job_outcome),
        Target(_BATCH, "BatchOrchestrator._execute_task", "orchestration.batch.task", call_attributes=_task_call,
               result_attributes=_task_result, outcome=_task_outcome, invoker=_task_invoker),
    )

    def _on_instrument(self, **kwargs: Any) -> None:
        _State.tracer = self._tracer

    def _on_uninstrument(self) -> None:
        _State.tracer = None
