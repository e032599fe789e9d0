"""Execution area: executor, pytest adapter subprocesses, strategies on thread pools, retries, results."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.trace import StatusCode
from support.spans import children, retry_events

from crossbridge_otel.instrumentors.execution import ExecutionInstrumentor
from crossbridge_otel.patching import subprocesses
from crossbridge_otel.settings import load as load_settings

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture
def execution(instrument):
    return instrument(ExecutionInstrumentor)


def test_executor_pytest_run_is_one_trace_with_command_children(
    execution, telemetry, venv_path, three_test_project
):
    """A pytest run gives execution.run (tests_failed) with discover/run/command children and TRACEPARENT."""
    from core.execution import ResourceAllocation, TestExecutionRequest, TestExecutor

    summary = TestExecutor(ResourceAllocation(max_workers=2)).execute(
        TestExecutionRequest(framework="pytest", project_root=str(three_test_project)))
    run = telemetry.span("execution.run")
    assert run.attributes["crossbridge.execution.status"] == summary.status.value == "failed"
    assert run.attributes["crossbridge.execution.total"] == summary.total_tests
    assert run.attributes["crossbridge.execution.framework"] == "pytest"
    assert run.status.status_code == StatusCode.ERROR
    assert run.attributes["error.type"] == "tests_failed"
    assert run.attributes["crossbridge.category"] == "execution"
    assert run.attributes["code.function.name"] == "core.execution.executor.TestExecutor.execute"
    names = {s.name for s in children(telemetry.spans(), run)}
    assert {"execution.adapter.get", "execution.adapter.discover", "execution.adapter.run"} <= names
    discover = telemetry.span("execution.adapter.discover")
    assert discover.attributes["crossbridge.execution.tests_discovered"] == 3
    commands = telemetry.spans("execution.command")
    assert len(commands) == 2
    assert {c.parent.span_id for c in commands} == {
        discover.context.span_id, telemetry.span("execution.adapter.run").context.span_id}
    assert all("pytest" in c.attributes["process.command_line"] for c in commands)
    seen = (three_test_project / "traceparent.txt").read_text()
    assert seen.split("-")[1] == format(run.context.trace_id, "032x")


def test_executor_unknown_framework_is_execution_error(execution, telemetry):
    """An unknown framework: no exception, execution.run ERROR with CrossBridge's execution error text."""
    from core.execution import ExecutionStatus, TestExecutionRequest, TestExecutor

    summary = TestExecutor().execute(TestExecutionRequest(framework="nosuchfw", project_root="."))
    assert summary.status == ExecutionStatus.ERROR
    run = telemetry.span("execution.run")
    assert run.attributes["error.type"] == "execution_error"
    assert run.status.description == summary.execution_errors[0]
    get = telemetry.span("execution.adapter.get")
    assert get.attributes["error.type"] == "ValueError"
    assert [e.name for e in get.events] == ["exception"]


def test_executor_retry_failed_has_its_own_span(execution, telemetry, venv_path, three_test_project):
    """retry_failed re-runs are an execution.retry_failed child with the number of rounds."""
    from core.execution import ResourceAllocation, TestExecutionRequest, TestExecutor

    TestExecutor(ResourceAllocation(max_workers=1)).execute(TestExecutionRequest(
        framework="pytest", project_root=str(three_test_project), tests=["test_three"], retry_failed=1))
    retried = telemetry.span("execution.retry_failed")
    assert retried.attributes["crossbridge.execution.retry_rounds"] == 1
    assert retried.parent.span_id == telemetry.span("execution.run").context.span_id


def _worker_span(telemetry):
    from core.execution.models import ExecutionStatus, TestExecutionResult

    tracer = telemetry.tracer_provider.get_tracer("test.worker")

    def run_one(test: str) -> TestExecutionResult:
        with tracer.start_as_current_span("worker"):
            return TestExecutionResult(test, test, ExecutionStatus.FAILED if test == "t3" else ExecutionStatus.PASSED)

    return run_one


def test_parallel_strategy_workers_stay_in_the_trace(execution, threads, telemetry):
    """ParallelStrategy runs tests on a thread pool; each worker span is a child of execution.strategy."""
    from core.execution.models import ResourceAllocation
    from core.execution.strategies import ParallelStrategy

    results = ParallelStrategy(ResourceAllocation(max_workers=3)).execute(["t1", "t2", "t3"], _worker_span(telemetry))
    strategy = telemetry.span("execution.strategy")
    assert strategy.attributes["crossbridge.execution.strategy"] == "parallel"
    assert strategy.attributes["crossbridge.execution.failed"] == 1 == sum(r.status.value == "failed" for r in results)
    workers = telemetry.spans("worker")
    assert len(workers) == 3
    assert all(w.parent is not None and w.parent.span_id == strategy.context.span_id for w in workers)


def test_batched_parallel_strategy_runs_batches_on_one_pool(execution, threads, telemetry):
    """BatchedParallelStrategy (batch_size from ResourceAllocation): all workers are children of its one span."""
    from core.execution.models import ResourceAllocation
    from core.execution.strategies import BatchedParallelStrategy

    BatchedParallelStrategy(ResourceAllocation(max_workers=2, batch_size=2)).execute(
        ["t1", "t2", "t3"], _worker_span(telemetry))
    (batched,) = telemetry.spans("execution.strategy")
    a = batched.attributes
    assert (a["crossbridge.execution.strategy"], a["crossbridge.execution.batch_size"]) == ("batched", 2)
    assert (a["crossbridge.execution.workers"], a["crossbridge.execution.failed"]) == (2, 1)
    workers = telemetry.spans("worker")
    assert len(workers) == 3 and all(w.parent.span_id == batched.context.span_id for w in workers)


def test_adaptive_strategy_span_has_the_chosen_strategy_as_child(execution, telemetry):
    """AdaptiveStrategy with a small suite delegates to sequential: a nested execution.strategy span."""
    from core.execution.models import ResourceAllocation
    from core.execution.strategies import AdaptiveStrategy

    AdaptiveStrategy(ResourceAllocation(max_workers=2)).execute(["t1", "t2"], _worker_span(telemetry))
    spans = {s.attributes["crossbridge.execution.strategy"]: s for s in telemetry.spans("execution.strategy")}
    assert set(spans) == {"adaptive", "sequential"}
    assert spans["sequential"].parent.span_id == spans["adaptive"].context.span_id


def _result(test: str, status: str, message: str = ""):
    from core.execution.models import ExecutionStatus, TestExecutionResult

    return TestExecutionResult(test, test, ExecutionStatus(status), error_message=message or None)


def test_retry_strategy_attempts_are_retry_events(execution, telemetry):
    """A test failing twice then passing: two retry events (will_retry, measured delay), retry.attempts 3, OK."""
    from core.execution.strategies import RetryStrategy

    calls = []

    def flaky(test: str):
        calls.append(test)
        return _result(test, "passed") if len(calls) == 3 else _result(test, "failed", f"boom {len(calls)}")

    result = RetryStrategy(max_retries=3, retry_delay=0.01).execute_with_retry("t", flaky)
    assert result.is_flaky and len(calls) == 3
    span = telemetry.span("execution.retry_test")
    events = retry_events(span)
    assert [e.attributes["retry.attempt"] for e in events] == [1, 2]
    assert all(e.attributes["retry.will_retry"] and e.attributes["retry.max_attempts"] == 4 for e in events)
    assert all(e.attributes["retry.delay_s"] >= 0.01 for e in events)  # CrossBridge slept retry_delay
    assert [e.attributes["exception.message"] for e in events] == ["boom 1", "boom 2"]
    assert events[0].attributes["error.type"] == "test_failed"
    assert span.attributes["retry.attempts"] == 3 and span.attributes["crossbridge.execution.flaky"] is True
    assert span.status.status_code != StatusCode.ERROR


def test_retry_strategy_lets_an_exception_escape(execution, telemetry):
    """CrossBridge's retry loop does not catch: a raising test is one attempt, recorded and re-raised as is."""
    from core.execution.strategies import RetryStrategy

    boom = ConnectionError("runner gone")

    def raising(test: str):
        raise boom

    with pytest.raises(ConnectionError) as raised:
        RetryStrategy(max_retries=2, retry_delay=0).execute_with_retry("t", raising)
    assert raised.value is boom
    span = telemetry.span("execution.retry_test")
    (event,) = retry_events(span)
    assert (event.attributes["retry.will_retry"], event.attributes["error.type"]) == (False, "ConnectionError")
    assert span.attributes["retry.attempts"] == 1 and span.attributes["error.type"] == "ConnectionError"


def test_retry_strategy_exhausted_is_test_failed(execution, telemetry):
    """A test that always fails: the last retry event says will_retry false and the span is test_failed."""
    from core.execution.models import ExecutionStatus, TestExecutionResult
    from core.execution.strategies import RetryStrategy

    def failing(test: str) -> TestExecutionResult:
        return TestExecutionResult(test, test, ExecutionStatus.FAILED, error_message="assert 1 == 2")

    RetryStrategy(max_retries=1, retry_delay=0).execute_with_retry("t", failing)
    span = telemetry.span("execution.retry_test")
    events = retry_events(span)
    assert [e.attributes["retry.will_retry"] for e in events] == [True, False]
    assert events[1].attributes["error.type"] == "test_failed"
    assert span.attributes["error.type"] == "test_failed"
    assert span.status.description == "assert 1 == 2"


def test_normalize_counts_and_none_outcome(execution, telemetry):
    """normalize reports totals from the report; a non-result file is ERROR normalize_failed."""
    from core.execution.results import ResultNormalizer

    run = ResultNormalizer().normalize(SAMPLES / "junit-current.xml")
    assert ResultNormalizer().normalize(SAMPLES / "jacoco.xml") is None
    ok, bad = telemetry.spans("execution.results.normalize")
    assert ok.attributes["crossbridge.execution.results.total"] == run.total_tests == 4
    p = "crossbridge.execution.results."
    assert (ok.attributes[p + "passed"], ok.attributes[p + "failed"], ok.attributes[p + "skipped"]) == (
        run.passed, run.failed, run.skipped)
    assert ok.attributes["crossbridge.execution.results.file"] == "junit-current.xml"
    assert bad.attributes["error.type"] == "normalize_failed"


def test_normalize_batch_with_a_bad_file_is_an_error(execution, telemetry):
    """normalize_batch over a good and a bad file: runs 1 of files 2, ERROR normalize_failed."""
    from core.execution.results import ResultNormalizer

    ResultNormalizer().normalize_batch([SAMPLES / "junit-current.xml", SAMPLES / "jacoco.xml"])
    batch = telemetry.span("execution.results.normalize_batch")
    assert batch.attributes["crossbridge.execution.results.files"] == 2
    assert batch.attributes["crossbridge.execution.results.runs"] == 1
    assert batch.attributes["error.type"] == "normalize_failed"
    assert len(children(telemetry.spans(), batch)) == 2


def test_compare_reports_regressions(execution, telemetry):
    """compare baseline/current: newly failing, new, slower tests and regressions as attributes."""
    from core.execution.results import ResultComparer, ResultNormalizer

    normalizer = ResultNormalizer()
    cmp = ResultComparer().compare(normalizer.normalize(SAMPLES / "junit-baseline.xml"),
                                   normalizer.normalize(SAMPLES / "junit-current.xml"))
    span = telemetry.span("execution.results.compare")
    p = "crossbridge.execution.compare."
    assert span.attributes[p + "regressions"] == cmp.regressions >= 1
    assert span.attributes[p + "newly_failing"] == len(cmp.newly_failing) == 1
    assert span.attributes[p + "new_tests"] == len(cmp.new_tests) == 1
    assert span.attributes[p + "slower"] == len(cmp.slower_tests) == 1
    assert span.status.status_code != StatusCode.ERROR


def test_aggregate_and_trends(execution, telemetry, tmp_path):
    """aggregate_run has file count and totals; analyze_all_metrics has one trend child per metric."""
    from core.execution.results import TrendAnalyzer, TrendMetric, UnifiedResultAggregator

    agg = UnifiedResultAggregator(tmp_path / "store")
    runs = [agg.aggregate_run([SAMPLES / "junit-baseline.xml"], run_id=f"r{i}") for i in range(3)]
    span = telemetry.spans("execution.results.aggregate")[0]
    assert span.attributes["crossbridge.execution.results.files"] == 1
    assert span.attributes["crossbridge.execution.results.total"] == runs[0].total_tests
    trends = TrendAnalyzer().analyze_all_metrics(runs)
    parent = telemetry.span("execution.results.trends")
    assert parent.attributes["crossbridge.execution.trend.metrics"] == len(trends) == len(TrendMetric)
    assert len(children(telemetry.spans(), parent)) == len(TrendMetric)


def test_execution_orchestrator_failed_command(execution, telemetry, venv_path, three_test_project):
    """CrossBridge's pytest command (--env, -n, --html) is refused by plain pytest: execution_failed, exit 4 on
    the execution.command child."""
    from core.execution.orchestration import ExecutionOrchestrator, ExecutionRequest

    result = ExecutionOrchestrator(three_test_project).execute(
        ExecutionRequest(framework="pytest", strategy="full", environment="qa"))
    assert result.status.value == "failed"
    span = telemetry.span("execution.orchestrator.execute")
    assert span.attributes["crossbridge.category"] == "orchestration"
    assert span.attributes["error.type"] == "execution_failed"
    assert span.status.description == result.error_message == "Command failed with code 4"
    command = telemetry.span("execution.command")
    assert command.attributes["process.exit.code"] == 4
    assert command.parent.span_id == telemetry.span("execution.orchestrator.run").context.span_id
    plan = telemetry.span("execution.orchestrator.plan")
    assert plan.attributes["crossbridge.execution.strategy"] == "full"


def test_execution_orchestrator_failing_tests_are_tests_failed(execution, telemetry, venv_path, three_test_project):
    """When pytest accepts the command and a test fails, CrossBridge says COMPLETED; the span says tests_failed."""
    from core.execution.orchestration import ExecutionOrchestrator, ExecutionRequest

    (three_test_project / "conftest.py").write_text(  # the options CrossBridge passes, so pytest runs the tests
        "def pytest_addoption(parser):\n    parser.addoption('--env')\n    parser.addoption('--html')\n")
    result = ExecutionOrchestrator(three_test_project).execute(
        ExecutionRequest(framework="pytest", strategy="full", environment="qa", parallel=False))
    assert result.status.value == "completed" and len(result.failed_tests) == 1
    span = telemetry.span("execution.orchestrator.execute")
    p = "crossbridge.execution."
    assert (span.attributes[p + "total"], span.attributes[p + "passed"], span.attributes[p + "failed"]) == (3, 2, 1)
    assert span.attributes["error.type"] == "tests_failed"
    assert result.failed_tests[0] in span.status.description
    assert telemetry.span("execution.command").attributes["process.exit.code"] == 1


def test_uninstrument_restores_originals_and_subprocess(instrument):
    """After uninstrument the executor method and subprocess.run are CrossBridge's/stdlib's own again."""
    import subprocess

    from core.execution.executor import TestExecutor

    before, run_before = TestExecutor.__dict__["execute"], subprocess.run
    inst = instrument(ExecutionInstrumentor)
    assert TestExecutor.__dict__["execute"] is not before and subprocesses.active()
    inst.uninstrument()
    assert TestExecutor.__dict__["execute"] is before and subprocess.run is run_before


def test_adapter_runs_take_execution_tokens(frozen_clock, instrument, telemetry, tmp_path, venv_path):
    """execution=1/0.2: the second pytest adapter run waits for the execution bucket, visibly."""
    instrument(ExecutionInstrumentor, settings=load_settings({"CROSSBRIDGE_OTEL_RATE_LIMITS": "execution=1/0.2"}))
    from adapters.pytest.adapter import PytestAdapter

    (tmp_path / "test_one.py").write_text("def test_one():\n    assert True\n")
    adapter = PytestAdapter(str(tmp_path))
    for _ in range(2):
        adapter.run_tests(["test_one"])
    spans = telemetry.spans("execution.adapter.run")
    waits = [[e.attributes["rate_limit.wait_s"] for e in s.events if e.name == "rate_limit.wait"] for s in spans]
    assert waits == [[], [pytest.approx(0.2)]]
