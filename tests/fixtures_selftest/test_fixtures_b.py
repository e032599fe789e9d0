"""Self-tests for the CrossBridge-shaped fixtures: execution, translation, orchestration, repo, sidecar, cli.

They check that the fixtures reproduce the behaviour listed in TARGETS.md (§5-§8, §10, §13 rows 8-12, 16,
19, 20) with every network endpoint on 127.0.0.1.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fake_bitbucket import FakeBitbucket, serve

TESTS = Path(__file__).resolve().parents[1]
FIXTURES = TESTS / "fixtures" / "crossbridge"
SAMPLES = TESTS / "samples"
if str(FIXTURES) not in sys.path:  # normally done by tests/conftest.py
    sys.path.insert(0, str(FIXTURES))

VENV_BIN = str(Path(sys.executable).parent)


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=1)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def captured(logger_name: str) -> Iterator[list[logging.LogRecord]]:
    """Attach a list handler directly to a (non-propagating) logger and remove it afterwards."""
    handler = _ListHandler()
    target = logging.getLogger(logger_name)
    target.addHandler(handler)
    try:
        yield handler.records
    finally:
        target.removeHandler(handler)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Disable the import-time DB connect of core.orchestration."""
    monkeypatch.setenv("CROSSBRIDGE_HOOKS_ENABLED", "false")


@pytest.fixture
def venv_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the venv's bin (with ``pytest``) first on PATH for PytestAdapter."""
    monkeypatch.setenv("PATH", VENV_BIN + os.pathsep + os.environ.get("PATH", ""))


@pytest.fixture
def three_test_project(tmp_path: Path) -> Path:
    """A tiny pytest project with 3 tests, 1 failing."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "test_sample.py").write_text(
        "def test_one():\n    assert True\n\n\n"
        "def test_two():\n    assert True\n\n\n"
        "def test_three():\n    assert 1 == 2\n"
    )
    return proj


@pytest.fixture
def fake_bitbucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, FakeBitbucket]]:
    """Start the fake Bitbucket API on 127.0.0.1 and shrink the PR 429 sleeps."""
    with serve() as (base, state):
        monkeypatch.setenv("CROSSBRIDGE_BITBUCKET_API_URL", base)
        monkeypatch.setenv("CROSSBRIDGE_BITBUCKET_RETRY_SCALE", "0.001")
        yield base, state


# --------------------------------------------------------------------------------------------------
# §13 row 8 / 9: results
# --------------------------------------------------------------------------------------------------
def test_normalizer_junit_counts_and_logs() -> None:
    """Row 8: junit-current.xml normalises to 4/2/1/1 with INFO and SUCCESS(25) logs in category execution."""
    from core.execution.results.normalizer import ResultNormalizer
    from core.logging import get_logger

    with captured("crossbridge.core.execution.results.normalizer") as records:
        run = ResultNormalizer().normalize(SAMPLES / "junit-current.xml")
    assert run is not None
    assert (run.total_tests, run.passed, run.failed, run.skipped) == (4, 2, 1, 1)
    levels = [r.levelno for r in records]
    assert logging.INFO in levels and 25 in levels
    assert all(not logging.getLogger(r.name).propagate for r in records)
    assert get_logger("core.execution.results.normalizer").category.value == "execution"


def test_normalizer_unknown_format_returns_none_with_warning_and_error() -> None:
    """Row 8: jacoco.xml gives None plus a WARNING and an ERROR log, never an exception."""
    from core.execution.results.normalizer import ResultNormalizer

    with captured("crossbridge.core.execution.results.normalizer") as records:
        assert ResultNormalizer().normalize(SAMPLES / "jacoco.xml") is None
    levels = [r.levelno for r in records]
    assert logging.WARNING in levels and logging.ERROR in levels


def test_normalizer_detects_pytest_and_robot_and_batches() -> None:
    """detect_framework picks pytest JSON and Robot XML; normalize_batch skips unparseable files."""
    from core.execution.results.models import FrameworkType
    from core.execution.results.normalizer import ResultNormalizer

    norm = ResultNormalizer()
    assert norm.detect_framework(SAMPLES / "pytest-report.json") == FrameworkType.PYTEST
    assert norm.detect_framework(SAMPLES / "output.xml") == FrameworkType.ROBOT
    runs = norm.normalize_batch(
        [SAMPLES / "pytest-report.json", SAMPLES / "output.xml", SAMPLES / "jacoco.xml"]
    )
    assert [r.total_tests for r in runs] == [2, 2]


def test_result_comparer_baseline_vs_current() -> None:
    """Row 9: one newly failing test, one new test, one slower test and one regression."""
    from core.execution.results.normalizer import ResultNormalizer
    from core.execution.results.result_comparer import ResultComparer

    norm = ResultNormalizer()
    base = norm.normalize(SAMPLES / "junit-baseline.xml")
    cur = norm.normalize(SAMPLES / "junit-current.xml")
    cmp = ResultComparer().compare(base, cur)
    assert [t.test_id for t in cmp.newly_failing] == ["com.example.LoginTest.testInvalidLogin"]
    assert [t.test_id for t in cmp.new_tests] == ["com.example.LoginTest.testRemember"]
    assert cmp.slower_tests == [("com.example.LoginTest.testValidLogin", 1.0, 2.0)]
    assert cmp.regressions == 1


def test_trend_analyzer_and_aggregator(tmp_path: Path) -> None:
    """UnifiedResultAggregator writes <run_id>.json; TrendAnalyzer reports a degrading pass rate."""
    from core.execution.results.result_collector import UnifiedResultAggregator
    from core.execution.results.trend_analyzer import TrendAnalyzer, TrendMetric

    agg = UnifiedResultAggregator(storage_path=tmp_path / "results")
    runs = [
        agg.aggregate_run([SAMPLES / name], run_id=f"r{i}")
        for i, name in enumerate(["junit-baseline.xml", "junit-baseline.xml", "junit-current.xml"])
    ]
    assert (tmp_path / "results" / "r2.json").exists()
    assert agg.aggregate_multiple_runs().total_runs == 3
    for i, run in enumerate(runs):  # distinct, ordered timestamps
        run.start_time = run.start_time.replace(microsecond=i)
    trend = TrendAnalyzer().analyze_metric(runs, TrendMetric.PASS_RATE)
    assert trend.trend_direction == "degrading"
    assert set(TrendAnalyzer().analyze_all_metrics(runs)) == set(TrendMetric)


# --------------------------------------------------------------------------------------------------
# §13 row 16: TestExecutor + PytestAdapter subprocess
# --------------------------------------------------------------------------------------------------
def test_executor_pytest_double_counts_failure(
    three_test_project: Path, venv_path: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Row 16: 3-test project with 1 failure gives FAILED with total_tests=4 and progress prints."""
    from core.execution import ExecutionStatus, ResourceAllocation, TestExecutionRequest, TestExecutor

    summary = TestExecutor(ResourceAllocation(max_workers=2)).execute(
        TestExecutionRequest(framework="pytest", project_root=str(three_test_project))
    )
    out = capsys.readouterr().out
    assert summary.status == ExecutionStatus.FAILED
    assert summary.total_tests == 4 and summary.passed == 2 and summary.failed == 2
    assert "Discovering tests in pytest..." in out and "Found 3 tests" in out


def test_executor_unknown_framework_never_raises() -> None:
    """Row 16: framework 'nosuchfw' gives status ERROR with execution_errors and no exception."""
    from core.execution import ExecutionStatus, TestExecutionRequest, TestExecutor

    summary = TestExecutor().execute(TestExecutionRequest(framework="nosuchfw", project_root="."))
    assert summary.status == ExecutionStatus.ERROR
    assert summary.execution_errors and summary.execution_errors[0].startswith("Execution failed:")


def test_executor_distributed_strategy_is_error(three_test_project: Path) -> None:
    """strategy=DISTRIBUTED is unsupported and becomes status ERROR."""
    from core.execution import ExecutionStatus, ExecutionStrategy, TestExecutionRequest, TestExecutor

    summary = TestExecutor().execute(
        TestExecutionRequest(
            framework="pytest",
            project_root=str(three_test_project),
            tests=["test_one"],
            strategy=ExecutionStrategy.DISTRIBUTED,
        )
    )
    assert summary.status == ExecutionStatus.ERROR


def test_executor_retry_failed_reruns(
    three_test_project: Path, venv_path: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """retry_failed=1 re-runs the failed tests once through _retry_failed_tests."""
    from core.execution import ResourceAllocation, TestExecutionRequest, TestExecutor

    summary = TestExecutor(ResourceAllocation(max_workers=1, retry_delay=0.0)).execute(
        TestExecutionRequest(framework="pytest", project_root=str(three_test_project), retry_failed=1)
    )
    assert "Retry attempt 1/1..." in capsys.readouterr().out
    assert any(r.retry_count == 1 for r in summary.results)


def test_pytest_adapter_discover_and_missing_binary(
    three_test_project: Path, venv_path: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """discover_tests lists 3 names; without pytest on PATH run_tests returns a failed suite result."""
    from adapters.pytest.adapter import PytestAdapter

    adapter = PytestAdapter(str(three_test_project))
    assert sorted(adapter.discover_tests()) == ["test_one", "test_three", "test_two"]
    monkeypatch.setenv("PATH", str(three_test_project))
    [result] = adapter.run_tests(["test_one"])
    assert (result.name, result.status, result.message) == ("pytest suite", "fail", "Pytest not found")


def test_strategies_threads_and_retry() -> None:
    """ParallelStrategy runs on pool threads; RetryStrategy marks a pass-on-retry result flaky."""
    from core.execution.models import ExecutionStatus, ResourceAllocation, TestExecutionResult
    from core.execution.strategies import BatchedParallelStrategy, ParallelStrategy, RetryStrategy

    threads: list[str] = []

    def run(test: str) -> TestExecutionResult:
        threads.append(threading.current_thread().name)
        if test == "boom":
            raise RuntimeError("boom")
        return TestExecutionResult(test, test, ExecutionStatus.PASSED)

    results = ParallelStrategy(ResourceAllocation(max_workers=2)).execute(["a", "b", "boom"], run)
    assert sorted(r.status.value for r in results) == ["error", "passed", "passed"]
    assert threading.current_thread().name not in threads
    assert (
        len(
            BatchedParallelStrategy(ResourceAllocation(max_workers=2), batch_size=2).execute(
                ["a", "b", "c"], run
            )
        )
        == 3
    )

    calls = {"n": 0}

    def flaky(test: str) -> TestExecutionResult:
        calls["n"] += 1
        status = ExecutionStatus.PASSED if calls["n"] > 1 else ExecutionStatus.FAILED
        return TestExecutionResult(test, test, status)

    res = RetryStrategy(max_retries=3, retry_delay=0).execute_with_retry("t", flaky)
    assert res.status == ExecutionStatus.PASSED and res.is_flaky and calls["n"] == 2


def test_execution_orchestrator_runs_subprocess(three_test_project: Path, venv_path: None) -> None:
    """ExecutionOrchestrator plans a pytest command and runs it as a subprocess."""
    from core.execution.orchestration import ExecutionOrchestrator, ExecutionRequest, ExecutionStatus

    result = ExecutionOrchestrator(three_test_project).execute(ExecutionRequest(framework="pytest"))
    assert result.status == ExecutionStatus.FAILED and result.exit_code == 1


# --------------------------------------------------------------------------------------------------
# §13 rows 10-12: translation
# --------------------------------------------------------------------------------------------------
def test_translate_selenium_to_playwright() -> None:
    """Row 10: selenium-java to playwright-python succeeds with 4 actions and 1 assertion."""
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    result = TranslationPipeline(TranslationConfig("selenium-java", "playwright-python")).translate(
        (SAMPLES / "LoginTest.java").read_text()
    )
    assert result.success and not result.errors
    assert (result.actions_translated, result.assertions_translated) == (4, 1)
    assert 'page.goto("https://example.com/login")' in result.target_code


def test_translate_cypress_to_pytest_fails_softly() -> None:
    """Row 11: cypress to pytest returns success False with the UI generator error, no exception."""
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    result = TranslationPipeline(TranslationConfig("cypress", "pytest")).translate(
        (SAMPLES / "login.cy.js").read_text()
    )
    assert result.success is False
    assert result.errors == ["Generator cannot handle intent type: IntentType.UI"]


def test_translate_cypress_to_robot_and_playwright() -> None:
    """cypress to robot / playwright-python succeed with 4 actions and 2 assertions."""
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    code = (SAMPLES / "login.cy.js").read_text()
    for target in ("robot", "playwright-python"):
        result = TranslationPipeline(TranslationConfig("cypress", target)).translate(code)
        assert result.success and (result.actions_translated, result.assertions_translated) == (4, 2)


def test_translation_robot_source_raises_from_ctor() -> None:
    """Row 12: a robot source raises ModuleNotFoundError for core.translation.parsers.robot_parser."""
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    with pytest.raises(ModuleNotFoundError, match="core.translation.parsers.robot_parser"):
        TranslationPipeline(TranslationConfig("robot", "pytest"))


def test_translate_file_path_bug(tmp_path: Path) -> None:
    """translate_file passes the path as source_framework: 'Translation error: ' without config."""
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    src = tmp_path / "LoginTest.java"
    src.write_text((SAMPLES / "LoginTest.java").read_text())
    assert TranslationPipeline().translate_file(src).errors == ["Translation error: "]
    configured = TranslationPipeline(TranslationConfig("selenium-java", "robot")).translate_batch([src])
    assert configured[0].success and configured[0].source_file == ""


def test_migration_hooks_return_dicts(tmp_path: Path) -> None:
    """integrate_hooks writes files and returns dicts for success, disabled, unsupported and error cases."""
    from core.translation.migration_hooks import MigrationHookConfig, MigrationHookIntegrator

    ok = MigrationHookIntegrator().integrate_hooks("pytest", tmp_path / "out", ["a.py"])
    assert ok["enabled"] is True and (tmp_path / "out" / "conftest.py").exists()
    off = MigrationHookIntegrator(MigrationHookConfig(enable_hooks=False)).integrate_hooks("pytest", tmp_path)
    assert off == {"enabled": False, "reason": "disabled_by_config"}
    assert MigrationHookIntegrator().integrate_hooks("nunit", tmp_path)["reason"] == "unsupported_framework"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert MigrationHookIntegrator().integrate_hooks("cypress", blocker)["reason"] == "integration_error"


# --------------------------------------------------------------------------------------------------
# §13 rows 19 / 20: orchestration
# --------------------------------------------------------------------------------------------------
def test_batch_orchestrator_retry_and_success_log(no_hooks: None) -> None:
    """Row 19: 1 completed, 1 failed after 1 retry (executed twice), job-level SUCCESS log, no exception."""
    from core.orchestration.batch import BatchConfig, BatchOrchestrator, ExecutionMode, FeatureType

    calls = {"bad": 0}

    def bad() -> None:
        calls["bad"] += 1
        raise RuntimeError("task exploded")

    orch = BatchOrchestrator(
        BatchConfig(execution_mode=ExecutionMode.SEQUENTIAL, default_max_retries=1, retry_delay=0.01)
    )
    job = orch.create_job("demo")
    orch.add_task(job, "ok", FeatureType.VALIDATION, lambda: 42)
    orch.add_task(job, "bad", FeatureType.VALIDATION, bad)
    with captured("crossbridge.core.orchestration.batch") as records:
        started = time.monotonic()
        result = orch.execute_job(job)
        elapsed = time.monotonic() - started
    assert (result.total_tasks, result.completed_tasks, result.failed_tasks) == (2, 1, 1)
    assert calls["bad"] == 2 and result.total_retries == 1 and 0.02 <= elapsed < 2
    assert any(r.levelno == 25 and "completed" in r.getMessage() for r in records)


def test_batch_orchestrator_parallel_uses_pool_threads(no_hooks: None) -> None:
    """PARALLEL mode runs tasks on ThreadPoolExecutor worker threads."""
    from core.orchestration.batch import BatchConfig, BatchOrchestrator, ExecutionMode, FeatureType

    orch = BatchOrchestrator(BatchConfig(execution_mode=ExecutionMode.PARALLEL, default_max_retries=0))
    job = orch.create_job("par")
    for i in range(3):
        orch.add_task(job, f"t{i}", FeatureType.TEST_EXECUTION, lambda: threading.current_thread().name)
    result = orch.execute_job(job)
    assert result.completed_tasks == 3
    names = {r["result"] for r in result.task_results.values()}
    assert all(n.startswith("batch-task") for n in names)


def test_migration_github_fails_immediately(no_hooks: None) -> None:
    """Row 20: a github.com request returns FAILED at once with the 'org' TypeError and ERROR logs."""
    from core.orchestration import MigrationOrchestrator, MigrationRequest, MigrationStatus, RepositoryAuth
    from core.orchestration.models import AuthType

    seen: list[tuple[str, MigrationStatus]] = []
    request = MigrationRequest(
        repo_url="https://github.com/octo/demo",
        auth=RepositoryAuth(auth_type=AuthType.GITHUB_TOKEN, token="x"),
        dry_run=True,
        create_pr=False,
    )
    with captured("crossbridge.core.orchestration.orchestrator") as records:
        started = time.monotonic()
        response = MigrationOrchestrator().run(request, progress_callback=lambda m, s: seen.append((m, s)))
    assert time.monotonic() - started < 1
    assert response.status == MigrationStatus.FAILED
    assert response.error_message.startswith(
        "Repository access failed: GitHubConnector.__init__() got an unexpected keyword argument 'org'"
    )
    assert seen[0] == ("Validating repository access", MigrationStatus.VALIDATING)
    assert seen[-1][1] == MigrationStatus.FAILED and len(seen) == 2
    assert any(r.levelno == logging.ERROR for r in records)


def test_migration_request_rejects_unknown_host() -> None:
    """MigrationRequest validation rejects a repo_url outside the four known hosts."""
    import pydantic
    from core.orchestration.models import AuthType, MigrationRequest, RepositoryAuth

    with pytest.raises(pydantic.ValidationError):
        MigrationRequest(
            repo_url="https://example.com/x/y", auth=RepositoryAuth(auth_type=AuthType.SSH, token="t")
        )


def test_migration_bitbucket_end_to_end(no_hooks: None, fake_bitbucket: tuple[str, FakeBitbucket]) -> None:
    """A bitbucket.org migration runs every phase against the local fake and opens PR #7 after a 429."""
    from core.orchestration import MigrationOrchestrator, MigrationRequest, MigrationStatus, RepositoryAuth
    from core.orchestration.models import AuthType

    _, state = fake_bitbucket
    state.pr_429 = 1
    seen: list[MigrationStatus] = []
    request = MigrationRequest(
        repo_url="https://bitbucket.org/acme/demo",
        auth=RepositoryAuth(auth_type=AuthType.BITBUCKET_APP_PASSWORD, token="t", username="u"),
        max_workers=2,
        target_branch="crossbridge/migration",
    )
    response = MigrationOrchestrator().run(request, progress_callback=lambda m, s: seen.append(s))
    assert response.status == MigrationStatus.COMPLETED, response.error_message
    assert (response.files_discovered, response.files_transformed, response.pr_number) == (1, 1, 7)
    assert seen == [
        MigrationStatus.VALIDATING,
        MigrationStatus.ANALYZING,
        MigrationStatus.TRANSFORMING,
        MigrationStatus.GENERATING,
        MigrationStatus.COMMITTING,
        MigrationStatus.COMPLETED,
    ]
    assert [(m, p) for m, p, _ in state.requests if p.endswith("/pullrequests")] == [
        ("POST", "/2.0/repositories/acme/demo/pullrequests")
    ] * 2
    assert any("migrated/tests/test_logintest.py" in c for c in state.commits)


def test_hook_sdk_connect_failure_is_only_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With hooks enabled the SDK tries psycopg2 on a closed 127.0.0.1 port and only logs a warning."""
    from core.observability.hook_sdk import CrossBridgeHookSDK

    monkeypatch.setenv("CROSSBRIDGE_HOOKS_ENABLED", "true")
    monkeypatch.setenv("CROSSBRIDGE_DB_URL", f"postgresql://postgres:admin@127.0.0.1:{_free_port()}/x")
    with caplog.at_level(logging.WARNING, logger="core.observability.event_persistence"):
        sdk = CrossBridgeHookSDK()
    assert sdk.persistence is not None and not sdk.persistence.connected
    assert any("Failed to connect" in r.getMessage() for r in caplog.records)
    monkeypatch.setenv("CROSSBRIDGE_HOOKS_ENABLED", "false")
    assert CrossBridgeHookSDK().persistence is None


# --------------------------------------------------------------------------------------------------
# Bitbucket connector
# --------------------------------------------------------------------------------------------------
def test_bitbucket_connector_reads_and_maps_errors(fake_bitbucket: tuple[str, FakeBitbucket]) -> None:
    """BitbucketConnector lists branches/files, reads files and maps a 404 to core.repo.FileNotFoundError."""
    import core.repo
    from core.repo.bitbucket import BitbucketConnector

    base, _ = fake_bitbucket
    conn = BitbucketConnector("acme", "demo", token="t", username="u", api_base_url=base)
    assert [b.name for b in conn.list_branches()] == ["main"]
    assert [f.path for f in conn.list_all_files(pattern="*.java")] == ["src/LoginTest.java"]
    assert "driver.get" in conn.read_file("src/LoginTest.java")
    with pytest.raises(core.repo.FileNotFoundError):
        conn.read_file("missing.txt")
    assert conn.file_exists("missing.txt") is False
    with pytest.raises(ValueError):
        BitbucketConnector("acme", "demo", token="t")


def test_bitbucket_pull_request_retry_on_429(
    fake_bitbucket: tuple[str, FakeBitbucket], capsys: pytest.CaptureFixture[str]
) -> None:
    """create_pull_request retries a 429 (scaled sleeps) and gives up after 3 tries with a plain Exception."""
    from core.repo.bitbucket import BitbucketConnector

    _, state = fake_bitbucket
    conn = BitbucketConnector("acme", "demo", token="t", username="u")
    state.pr_429 = 2
    pr = conn.create_pull_request("t", "b", "feature")
    assert pr.number == 7 and "429" in capsys.readouterr().out
    state.pr_429 = 5
    with pytest.raises(Exception, match="Failed to create pull request"):
        conn.create_pull_request("t", "b", "feature")
    assert sum(1 for r in state.requests if r[1].endswith("/pullrequests")) == 6


# --------------------------------------------------------------------------------------------------
# sidecar API + client
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def live_sidecar() -> Iterator[Any]:
    """Run SidecarAPIServer under uvicorn on a free 127.0.0.1 port; stop it via POST /shutdown."""
    import httpx
    from services.sidecar_api import SidecarAPIServer

    server = SidecarAPIServer(host="127.0.0.1", port=_free_port())
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=0.5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield server
    finally:
        try:
            httpx.post(f"http://127.0.0.1:{server.port}/shutdown", timeout=2)
        except httpx.HTTPError:
            pass
        thread.join(10)
        server.observer.stop(timeout=1)


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_sidecar_api_routes_and_validation_logs() -> None:
    """The FastAPI app answers /health and /events, and an invalid event gives 422 with two ERROR logs."""
    from fastapi.testclient import TestClient
    from services.sidecar_api import SidecarAPIServer

    server = SidecarAPIServer(host="127.0.0.1", port=0)
    try:
        client = TestClient(server.app)
        assert client.get("/health").json()["status"] == "healthy"
        assert client.post("/events", json={"event_type": "test_start", "test_id": "t1"}).json() == {
            "status": "accepted",
            "event_id": "t1",
        }
        with captured("crossbridge.services.sidecar_api") as records:
            assert client.post("/events", json={"data": {}}).status_code == 422
        assert [r.levelno for r in records].count(logging.ERROR) == 2
        assert server.observer.flush() and server.observer.get_stats()["events_processed"] == 1
    finally:
        server.observer.stop(timeout=1)


def test_sidecar_client_sends_to_live_server(live_sidecar: Any) -> None:
    """RemoteSidecarClient delivers 2 events to a live uvicorn sidecar on 127.0.0.1 (events_sent=2)."""
    from services.sidecar_client import RemoteSidecarClient, RemoteSidecarConfig

    cfg = RemoteSidecarConfig(host="127.0.0.1", port=live_sidecar.port, batch_timeout_ms=50)
    with RemoteSidecarClient(cfg, framework="pytest") as client:
        client.send_event("test_start", {"a": 1}, test_id="t1")
        client.send_event("test_end", {"status": "passed"}, test_id="t1")
        assert client.flush(timeout=5)
        stats = client.get_stats()
    assert stats["events_sent"] == 2 and stats["events_failed"] == 0
    assert live_sidecar.events_accepted == 2


def test_sidecar_client_retries_dead_port() -> None:
    """Against a dead port with retry_attempts=2 the client records events_failed=1 and retries=2."""
    from services.sidecar_client import RemoteSidecarClient, RemoteSidecarConfig

    cfg = RemoteSidecarConfig(
        host="127.0.0.1",
        port=_free_port(),
        retry_attempts=2,
        batch_timeout_ms=50,
        timeout_seconds=1,
        retry_backoff_base=0.01,
    )
    client = RemoteSidecarClient(cfg, framework="pytest")
    try:
        client.send_event("test_start", {})
        assert client.flush(timeout=5)
        stats = client.get_stats()
    finally:
        client.stop()
    assert (stats["events_failed"], stats["retries"], stats["events_sent"]) == (1, 2, 0)


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------
def test_cli_translate_success_and_failure() -> None:
    """`translate` prints Playwright code (exit 0) and exits 1 for cypress to pytest."""
    from cli.main import app
    from typer.testing import CliRunner

    runner = CliRunner()
    ok = runner.invoke(
        app,
        [
            "translate",
            str(SAMPLES / "LoginTest.java"),
            "--from",
            "selenium-java",
            "--to",
            "playwright-python",
        ],
    )
    assert ok.exit_code == 0 and "page.goto" in ok.output
    bad = runner.invoke(
        app, ["translate", str(SAMPLES / "login.cy.js"), "--from", "cypress", "--to", "pytest"]
    )
    assert bad.exit_code == 1


def test_cli_run_unknown_framework_exits_1(tmp_path: Path) -> None:
    """`run --framework nosuchfw` exits 1 and reports the execution error."""
    from cli.main import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["run", "--framework", "nosuchfw", "--project-root", str(tmp_path)])
    assert result.exit_code == 1 and "status=error" in result.output
