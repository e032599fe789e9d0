"""Orchestration area: migration runs with phase spans, batch jobs with CrossBridge's own task retries."""

from __future__ import annotations

import pytest
from opentelemetry.trace import StatusCode
from support.spans import children, retry_events

from crossbridge_otel import libraries
from crossbridge_otel.instrumentors.orchestration import PHASES, OrchestrationInstrumentor

P = "crossbridge.orchestration."
B = "crossbridge.orchestration.batch."
TOKEN = "s3cr3t-token-5e6f"


@pytest.fixture
def orchestration(instrument):
    return instrument(OrchestrationInstrumentor)


@pytest.fixture
def http(telemetry):
    """The contrib requests instrumentation, as opentelemetry-instrument loads it with [libraries]."""
    done = libraries.instrument(["requests"], tracer_provider=telemetry.tracer_provider)
    yield
    libraries.uninstrument(done)


def _request(url: str, auth_type: str = "bitbucket_app_password", **kw):
    from core.orchestration import MigrationRequest, RepositoryAuth

    return MigrationRequest(repo_url=url, auth=RepositoryAuth(auth_type=auth_type, token=TOKEN, username="u"), **kw)


def _bitbucket_request(**kw):
    """A Bitbucket migration of the fake's one Java file; 'auto-detect' (the default branch) breaks listing."""
    return _request("https://bitbucket.org/acme/demo", branch="main", max_workers=2,
                    target_branch="crossbridge/migration", framework_config={"java_src_path": "src"}, **kw)


def _exported(telemetry) -> str:
    spans = telemetry.spans()
    return " ".join([str(v) for s in spans for v in s.attributes.values()]
                    + [str(s.status.description) for s in spans])


def test_github_migration_fails_in_the_validating_phase(orchestration, telemetry):
    """github.com: status FAILED → migrate ERROR migration_failed, the validating phase ERROR, callback intact."""
    from core.orchestration import MigrationOrchestrator

    seen = []
    response = MigrationOrchestrator().run(
        _request("https://github.com/octo/demo", "github_token", dry_run=True, create_pr=False),
        progress_callback=lambda message, status, *rest, **kw: seen.append(status.value))
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
    assert access.attributes["error.type"] == "ValueError"
    assert TOKEN not in _exported(telemetry)


def test_bitbucket_migration_phases_with_pool_reads_under_transforming(
    orchestration, threads, http, telemetry, fake_bitbucket
):
    """Four phase children in order, the pool thread's file read under 'transforming'; CrossBridge then fails
    after COMPLETED (its summary reads migration_type.value, None here): the run is the error, no phase is."""
    from core.orchestration import MigrationOrchestrator

    calls = []
    response = MigrationOrchestrator().run(_bitbucket_request(create_pr=False),
                                           progress_callback=lambda *a, **kw: calls.append((a, kw)))
    assert response.status.value == "failed" and len(response.files_transformed) == 1
    run = telemetry.span("orchestration.migrate")
    assert run.attributes["error.type"] == "migration_failed"
    assert run.status.description == response.error_message == "'NoneType' object has no attribute 'value'"
    phases = sorted(children(telemetry.spans(), run), key=lambda s: s.start_time)
    assert [s.name for s in phases] == [f"orchestration.phase.{p}" for p in PHASES[:4]]
    assert all(s.attributes[P + "phase"] == s.name.rsplit(".", 1)[1] for s in phases)
    assert not any(s.status.status_code == StatusCode.ERROR for s in phases)
    transforming = telemetry.span("orchestration.phase.transforming")
    read = [s for s in telemetry.spans() if s.name == "GET" and  # the requests instrumentation's old semconv
            s.attributes.get("http.url", "").endswith("/src/main/src/LoginTest.java")]
    assert len(read) == 1 and read[0].parent.span_id == transforming.context.span_id
    assert (run.attributes[P + "files_transformed"], run.attributes[P + "files_discovered"]) == (1, 1)
    assert any(len(a) == 3 or "completed_percent" in kw for a, kw in calls)  # CrossBridge's own calls, unchanged
    assert TOKEN not in _exported(telemetry)


def test_transformation_with_nothing_to_transform_completes(orchestration, telemetry, fake_bitbucket):
    """A transformation-only run finding no .robot files: CrossBridge completes early; run and phases are OK."""
    from core.orchestration import MigrationOrchestrator

    response = MigrationOrchestrator().run(_request(
        "https://bitbucket.org/acme/demo", branch="main", target_branch="migrated", operation_type="transformation"))
    assert response.status.value == "completed"
    run = telemetry.span("orchestration.migrate")
    assert run.status.status_code == StatusCode.UNSET and run.attributes[P + "operation_type"] == "transformation"
    phases = sorted(children(telemetry.spans(), run), key=lambda s: s.start_time)
    assert [s.name for s in phases] == ["orchestration.phase.validating", "orchestration.phase.analyzing"]
    assert all(s.status.status_code == StatusCode.UNSET for s in phases)


def test_bitbucket_migration_with_pr_fails_in_the_committing_phase(orchestration, telemetry, fake_bitbucket):
    """With create_pr: five phases; CrossBridge's PR step fails (no migration_type), so 'committing' is the error."""
    from core.orchestration import MigrationOrchestrator

    response = MigrationOrchestrator().run(_bitbucket_request(create_pr=True))
    assert response.status.value == "failed"
    run = telemetry.span("orchestration.migrate")
    phases = sorted(children(telemetry.spans(), run), key=lambda s: s.start_time)
    assert [s.name for s in phases] == [f"orchestration.phase.{p}" for p in PHASES]
    assert [s.status.status_code == StatusCode.ERROR for s in phases] == [False] * 4 + [True]
    assert phases[-1].status.description == response.error_message
    pr = telemetry.span("orchestration.create_pull_request")
    assert pr.parent.span_id == phases[-1].context.span_id
    assert pr.attributes["error.type"] == "AttributeError"


def _job(mode, retries, *tasks):
    from core.orchestration.batch import BatchConfig, BatchOrchestrator, FeatureType

    orch = BatchOrchestrator(BatchConfig(execution_mode=mode, default_max_retries=retries, retry_delay=0.005,
                                         continue_on_failure=True))
    job = orch.create_job("demo")
    for name, fn in tasks:
        orch.add_task(job, name, FeatureType.TEST_EXECUTION, fn)
    return orch, job


def test_batch_task_retries_are_retry_events_on_one_span(orchestration, telemetry):
    """A task failing once then passing: one task span (no nested one), one retry event, retry.attempts 2."""
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
    assert task.parent.span_id == telemetry.span("orchestration.batch.job").context.span_id
    (event,) = retry_events(task)
    a = event.attributes
    assert (a["retry.attempt"], a["retry.max_attempts"], a["retry.will_retry"]) == (1, 3, True)
    assert a["error.type"] == "ConnectionError" and a["exception.message"] == "transient"
    assert a["retry.delay_s"] >= 0.01  # CrossBridge slept retry_delay * 2**1
    assert task.attributes["retry.attempts"] == 2 and task.attributes[B + "retries"] == 1
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
    tasks = telemetry.spans("orchestration.batch.task")
    assert sorted(s.attributes[B + "task"] for s in tasks) == ["bad", "ok"]
    bad = [s for s in tasks if s.attributes[B + "task"] == "bad"][0]
    assert bad.attributes["error.type"] == "task_failed" and bad.status.description == "task exploded"
    assert [e.attributes["retry.will_retry"] for e in retry_events(bad)] == [True, False]
    assert all(e.attributes["exception.message"] == "task exploded" for e in retry_events(bad))
    assert bad.attributes["retry.attempts"] == 2


def test_batch_parallel_tasks_are_children_of_the_job(orchestration, threads, telemetry):
    """PARALLEL mode: every task span, run on a pool thread, is a child of the job span."""
    from core.orchestration.batch import ExecutionMode

    orch, job = _job(ExecutionMode.PARALLEL, 0, *((f"t{i}", lambda: 1) for i in range(4)))
    orch.execute_job(job)
    orch.shutdown()
    job_span = telemetry.span("orchestration.batch.job")
    tasks = telemetry.spans("orchestration.batch.task")
    assert len(tasks) == 4
    assert all(t.parent is not None and t.parent.span_id == job_span.context.span_id for t in tasks)
    assert job_span.attributes[B + "mode"] == "parallel"


def test_feature_pipeline_and_aggregation_are_spans(orchestration, telemetry, tmp_path):
    """FeatureCoordinator builds a pipeline (tasks, dependencies); the aggregator's report and save are spans."""
    from core.orchestration.batch import (
        BatchConfig,
        BatchOrchestrator,
        BatchResultAggregator,
        ExecutionMode,
        FeatureCoordinator,
        FeatureType,
    )

    orch = BatchOrchestrator(BatchConfig(execution_mode=ExecutionMode.SEQUENTIAL))
    features = [FeatureType.TEST_EXECUTION, FeatureType.RESULT_AGGREGATION]
    job = FeatureCoordinator(orch).create_feature_pipeline("nightly", features, {}, tmp_path)
    pipeline = telemetry.span("orchestration.batch.pipeline")
    assert (pipeline.attributes[B + "features"], pipeline.attributes[B + "tasks"]) == (2, job.total_tasks)
    assert pipeline.attributes[B + "dependencies"] == 1  # aggregation waits for execution
    result = orch.execute_job(job)
    aggregator = BatchResultAggregator(tmp_path / "store")
    report = aggregator.generate_report([result])
    path = aggregator.save_results([result], "nightly.json")
    span = telemetry.span("orchestration.batch.report")
    assert span.attributes[B + "report_bytes"] == len(report) and span.attributes[B + "format"] == "text"
    aggregates = telemetry.spans("orchestration.batch.aggregate")
    assert len(aggregates) == 2 and aggregates[0].parent.span_id == span.context.span_id
    assert aggregates[0].attributes[B + "completed"] == result.completed_tasks == 2
    assert telemetry.span("orchestration.batch.save").attributes[B + "file"] == path.name == "nightly.json"


def test_report_on_no_results_records_crossbridge_key_error(orchestration, telemetry, tmp_path):
    """generate_report([]) raises KeyError in CrossBridge (aggregate_results returns {}): recorded and re-raised."""
    from core.orchestration.batch import BatchResultAggregator

    with pytest.raises(KeyError):
        BatchResultAggregator(tmp_path).generate_report([])
    span = telemetry.span("orchestration.batch.report")
    assert span.attributes["error.type"] == "KeyError" and span.attributes[B + "jobs"] == 0


def test_distributed_failed_and_lost_tasks_are_an_error(orchestration, telemetry):
    """DistributedExecutor: a raising task and one whose result cannot come back → batch_tasks_failed, counted."""
    import _thread

    from core.orchestration.batch import BatchConfig, BatchOrchestrator, DistributedExecutor, ExecutionMode, FeatureType

    orch = BatchOrchestrator(BatchConfig(execution_mode=ExecutionMode.SEQUENTIAL))
    job = orch.create_job("spread")
    orch.add_task(job, "ok", FeatureType.VALIDATION, divmod, args=(7, 2))
    orch.add_task(job, "zero", FeatureType.VALIDATION, divmod, args=(1, 0))
    orch.add_task(job, "lock", FeatureType.VALIDATION, _thread.allocate_lock)  # its result cannot be pickled
    executor = DistributedExecutor(BatchConfig(enable_distributed=True, worker_count=2, heartbeat_interval=0.05))
    try:
        result = executor.execute_distributed(job)
    finally:
        executor.stop()
        executor.manager.shutdown()
    span = telemetry.span("orchestration.batch.distributed.execute")
    assert (span.attributes[B + "completed"], span.attributes[B + "failed"], span.attributes[B + "lost"]) == (1, 1, 1)
    assert result["failed_tasks"] == 1
    assert span.attributes["error.type"] == "batch_tasks_failed"
    assert "zero: integer division or modulo by zero" in span.status.description
    start = telemetry.span("orchestration.batch.distributed.start")
    assert start.parent.span_id == span.context.span_id and start.attributes[B + "workers"] == 2
    assert telemetry.span("orchestration.batch.distributed.stop").status.status_code != StatusCode.ERROR
