"""Orchestration area: migration runs with phase spans, batch jobs with CrossBridge's own task retries."""

from __future__ import annotations

import pytest
from areas_helpers import children, retry_events
from opentelemetry.trace import StatusCode

from crossbridge_otel.instrumentors.orchestration import PHASES, OrchestrationInstrumentor
from crossbridge_otel.instrumentors.translation import TranslationInstrumentor

P = "crossbridge.orchestration."
B = "crossbridge.orchestration.batch."


@pytest.fixture
def orchestration(instrument):
    return instrument(OrchestrationInstrumentor)


def _request(url: str, **kw):
    from core.orchestration import MigrationRequest, RepositoryAuth
    from core.orchestration.models import AuthType

    auth = RepositoryAuth(auth_type=AuthType.BITBUCKET_APP_PASSWORD, token="s3cr3t-token", username="u")
    return MigrationRequest(repo_url=url, auth=auth, **kw)


def test_github_migration_fails_in_the_validating_phase(orchestration, telemetry):
    """github.com: status FAILED → migrate ERROR migration_failed, the validating phase ERROR, callback intact."""
    seen = []
    from core.orchestration import MigrationOrchestrator

    response = MigrationOrchestrator().run(_request("https://github.com/octo/demo", dry_run=True, create_pr=False),
                                           progress_callback=lambda m, s: seen.append(s.value))
    assert seen == ["validating", "failed"]
    run = telemetry.span("orchestration.migrate")
    assert run.attributes["error.type"] == "migration_failed"
    assert run.status.description == response.error_message
    assert run.attributes[P + "repo_host"] == "github.com" and run.attributes[P + "status"] == "failed"
    phase = telemetry.span("orchestration.phase.validating")
    assert phase.parent.span_id == run.context.span_id
    assert phase.attributes["error.type"] == "migration_failed"
    access = telemetry.span("orchestration.validate_access")
    assert access.parent.span_id == phase.context.span_id
    assert access.attributes["error.type"] == "RuntimeError"
    assert not any("s3cr3t-token" in str(v) for s in telemetry.spans() for v in s.attributes.values())


def test_bitbucket_migration_has_one_span_per_phase_and_workers_in_transforming(
    orchestration, instrument, threads, telemetry, fake_bitbucket
):
    """A full migration: five phase children in order; the thread-pool translations sit under 'transforming'."""
    from core.orchestration import MigrationOrchestrator

    instrument(TranslationInstrumentor)
    response = MigrationOrchestrator().run(_request("https://bitbucket.org/acme/demo", max_workers=2,
                                                    target_branch="crossbridge/migration"))
    assert response.status.value == "completed", response.error_message
    run = telemetry.span("orchestration.migrate")
    assert run.status.status_code != StatusCode.ERROR
    phases = sorted(children(telemetry.spans(), run), key=lambda s: s.start_time)
    assert [s.name for s in phases] == [f"orchestration.phase.{p}" for p in PHASES]
    assert all(s.attributes[P + "phase"] == s.name.rsplit(".", 1)[1] for s in phases)
    transforming = telemetry.span("orchestration.phase.transforming")
    translate = telemetry.span("translation.translate")
    assert translate.parent.span_id == transforming.context.span_id
    assert translate.context.trace_id == run.context.trace_id
    pr = telemetry.span("orchestration.create_pull_request")
    assert pr.parent.span_id == telemetry.span("orchestration.phase.committing").context.span_id
    assert run.attributes[P + "files_transformed"] == response.files_transformed == 1


def _job(mode, retries, *tasks):
    from core.orchestration.batch import BatchConfig, BatchOrchestrator, FeatureType

    orch = BatchOrchestrator(BatchConfig(execution_mode=mode, default_max_retries=retries, retry_delay=0.005,
                                         continue_on_failure=True))
    job = orch.create_job("demo")
    for name, fn in tasks:
        orch.add_task(job, name, FeatureType.TEST_EXECUTION, fn)
    return orch, job


def test_batch_task_retries_are_retry_events(orchestration, telemetry):
    """A task failing once then passing: one retry event (will_retry) and retry.attempts 2 on its task span."""
    from core.orchestration.batch import ExecutionMode

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("transient")
        return "ok"

    orch, job = _job(ExecutionMode.SEQUENTIAL, 2, ("flaky", flaky))
    result = orch.execute_job(job)
    assert result.completed_tasks == 1 and len(calls) == 2
    task = telemetry.span("orchestration.batch.task")
    events = retry_events(task)
    assert len(events) == 1 and events[0].attributes["retry.will_retry"] is True
    assert events[0].attributes["error.type"] == "ConnectionError"
    assert events[0].attributes["retry.delay_s"] > 0
    assert task.attributes["retry.attempts"] == 2 == task.attributes[B + "attempts"]
    assert task.status.status_code != StatusCode.ERROR
    counted = {p.attributes["outcome"]: p.value for p in telemetry.metric_points("crossbridge.retry.attempts")
               if p.attributes["operation"] == "orchestration.batch.task"}
    assert counted == {"retried": 1, "ok": 1}


def test_batch_failed_task_marks_job_and_task(orchestration, telemetry):
    """TARGETS row 19: the exploding task is tried twice, task_failed with its error; the job is an error."""
    from core.orchestration.batch import ExecutionMode

    def explode():
        raise RuntimeError("task exploded")

    orch, job = _job(ExecutionMode.SEQUENTIAL, 1, ("ok", lambda: 1), ("bad", explode))
    result = orch.execute_job(job)
    assert (result.completed_tasks, result.failed_tasks) == (1, 1)
    job_span = telemetry.span("orchestration.batch.job")
    assert job_span.attributes["error.type"] == "batch_tasks_failed"
    assert "task exploded" in job_span.status.description
    assert job_span.attributes[B + "failed"] == 1 and job_span.attributes[B + "retries"] == 1
    assert job_span.attributes["crossbridge.category"] == "general"
    bad = [s for s in telemetry.spans("orchestration.batch.task") if s.attributes[B + "task"] == "bad"][0]
    assert bad.attributes["error.type"] == "task_failed" and bad.status.description == "task exploded"
    assert [e.attributes["retry.will_retry"] for e in retry_events(bad)] == [True, False]
    assert all(e.attributes["exception.message"] == "task exploded" for e in retry_events(bad))


def test_batch_parallel_tasks_are_children_of_the_job(orchestration, threads, telemetry):
    """PARALLEL mode: every task span, run on a pool thread, is a child of the job span."""
    from core.orchestration.batch import ExecutionMode

    orch, job = _job(ExecutionMode.PARALLEL, 0, *((f"t{i}", lambda: 1) for i in range(4)))
    orch.execute_job(job)
    job_span = telemetry.span("orchestration.batch.job")
    tasks = telemetry.spans("orchestration.batch.task")
    assert len(tasks) == 4
    assert all(t.parent is not None and t.parent.span_id == job_span.context.span_id for t in tasks)
    assert job_span.attributes[B + "mode"] == "parallel"
