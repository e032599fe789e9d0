"""A program driving the real CrossBridge for the end-to-end tests, run under ``opentelemetry-instrument``.

It imports CrossBridge (found on ``PYTHONPATH``: ``crossbridge_target.crossbridge_env()``) and the OpenTelemetry
API only, never crossbridge_otel: everything it exports comes from the distribution the way a user gets it
(``steady`` only reads the distribution's public drop count, to tell the test when an export has failed).
Three modes::

    python workload.py full <workdir>                 one traced run touching every kind of signal (test 1)
    python workload.py steady <sync_dir>              paced operations across a collector restart (test 2)
    python workload.py child <jacoco.xml> <facts>     the instrumented child process that ``full`` starts

Run with ``CROSSBRIDGE_HOOKS_ENABLED=false`` inside a loopback-only network namespace. Facts for the test are
printed as ``E2E {json}`` lines on stdout (the child, whose output CrossBridge captures, writes its facts to a
file instead); the very last line is ``E2E-LAST <epoch seconds>``, written by the program's last statement so
the test can measure how long the exit (the telemetry flush) takes.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SCOPE = "crossbridge.e2e.workload"
#: full mode: the 'tests' ParallelStrategy runs on its thread pool.
POOL_TESTS = ("child-process", "swallowed-failure", "exception", "translation")
#: steady mode: operations before the pause, and after it (the collector is killed during the pause and
#: restarted while the second part runs).
STEADY_BEFORE, STEADY_AFTER, STEADY_PACE_S = 8, 35, 0.1


def emit(**facts: object) -> None:
    print("E2E " + json.dumps(facts, sort_keys=True), flush=True)


def _process_facts() -> dict[str, object]:
    """Where CrossBridge was imported from, and the strict switch this process inherited (issue 17)."""
    import core

    return {
        "crossbridge_src": str(Path(core.__file__).resolve().parents[1]),
        "strict": os.environ.get("CROSSBRIDGE_OTEL_STRICT"),
        "pid": os.getpid(),
    }


class SpanCounter(SpanProcessor):
    """Counts every sampled span this process ends: the number the drop accounting is checked against."""

    def __init__(self) -> None:
        self.ended = 0

    def on_end(self, span) -> None:  # type: ignore[no-untyped-def]
        if span.context is not None and span.context.trace_flags.sampled:
            self.ended += 1


def _count_spans() -> SpanCounter:
    counter = SpanCounter()
    trace.get_tracer_provider().add_span_processor(counter)  # type: ignore[attr-defined]
    return counter


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------------- full mode
def run_tests_in_parallel(workdir: Path, log, threads: dict[str, str]) -> list:  # type: ignore[no-untyped-def]
    """CrossBridge's ParallelStrategy runs four 'tests' on its thread pool: an isolated coverage collection whose
    command is an instrumented Python child, a coverage.py parse CrossBridge swallows, a JaCoCo parse that
    raises, and a translation CrossBridge reports as unsuccessful."""
    from core.coverage.coverage_py_parser import CoveragePyParser
    from core.coverage.engine import CoverageMappingEngine
    from core.coverage.jacoco_parser import JaCoCoXMLParser
    from core.execution.models import ExecutionStatus, ResourceAllocation, TestExecutionResult
    from core.execution.strategies import ParallelStrategy
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    project = workdir / "project"
    report = project / "target" / "site" / "jacoco" / "jacoco.xml"
    report.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLES / "jacoco.xml", report)
    venv_bin = Path(sys.executable).parent
    child_facts = workdir / "child-facts.json"
    child = " ".join(
        shlex.quote(str(p))
        for p in (venv_bin / "opentelemetry-instrument", sys.executable, Path(__file__), "child", report, child_facts)
    )

    def one(test: str) -> TestExecutionResult:
        threads[test] = threading.current_thread().name
        status = ExecutionStatus.PASSED
        if test == "child-process":
            # The engine runs the command with shell=True, captures its output, then finds and parses the report.
            mapping = CoverageMappingEngine(workdir / "coverage.db").collect_coverage_isolated(
                test_id=test, test_command=child, working_dir=project, timeout=60
            )
            status = ExecutionStatus.PASSED if mapping is not None else ExecutionStatus.FAILED
        elif test == "swallowed-failure":
            # CoveragePyParser reads JSON: given the XML report it prints the error and returns None.
            if CoveragePyParser().parse(SAMPLES / "coverage.xml", test_name=test) is None:
                status = ExecutionStatus.FAILED
        elif test == "exception":
            try:
                JaCoCoXMLParser().parse(workdir / "missing" / "jacoco.xml", test_id=test)
            except FileNotFoundError as exc:
                log.error(f"JaCoCo report missing: {exc}", test=test)
                status = ExecutionStatus.ERROR
        elif test == "translation":
            # CrossBridge's pytest generator cannot write UI tests: success=False with its error, no exception.
            result = TranslationPipeline(TranslationConfig("cypress", "pytest")).translate(
                (SAMPLES / "login.cy.js").read_text(encoding="utf-8"), source_file="login.cy.js"
            )
            status = ExecutionStatus.PASSED if result.success else ExecutionStatus.FAILED
        log.info(f"test {test} finished", status=status.value)
        return TestExecutionResult(test_id=test, name=test, status=status)

    strategy = ParallelStrategy(ResourceAllocation(max_workers=len(POOL_TESTS)))
    return strategy.execute(list(POOL_TESTS), one)


def initialize_unreachable_storage() -> bool:
    """PostgresStorageBackend.initialize against a closed port: refused, retried, then False."""
    from core.profiling.models import ProfileConfig, StorageBackendType
    from core.profiling.storage import PostgresStorageBackend

    config = ProfileConfig(
        enabled=True,
        backend=StorageBackendType.POSTGRES,
        postgres_host="127.0.0.1",
        postgres_port=_closed_port(),
        postgres_password="hunter2",
    )
    return PostgresStorageBackend(config).initialize()


def call_flaky_service() -> str:
    """CrossBridge's own retry loop (core.runtime.retry_with_backoff) around a call failing twice, then fine."""
    from core.runtime.retry import RetryPolicy, retry_with_backoff

    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError(f"service unavailable (call {len(calls)})")
        return "ok"

    return retry_with_backoff(flaky, RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05))


def full(workdir: Path) -> None:
    from core.logging import LogCategory, get_logger

    counter = _count_spans()
    log = get_logger("core.e2e.workload", category=LogCategory.EXECUTION)
    tracer = trace.get_tracer(SCOPE)
    with tracer.start_as_current_span("e2e.workload") as root:
        log.info("workload started", mode="full")
        threads = {"main": threading.current_thread().name}
        results = run_tests_in_parallel(workdir, log, threads)
        stored = initialize_unreachable_storage()
        flaky = call_flaky_service()
        log.success("workload finished", tests=len(results))
        ctx = root.get_span_context()
    child_facts = workdir / "child-facts.json"
    emit(
        trace_id=f"{ctx.trace_id:032x}",
        root_span_id=f"{ctx.span_id:016x}",
        results={r.test_id: r.status.value for r in results},
        storage_initialized=stored,
        flaky_result=flaky,
        spans_created=counter.ended,
        threads=threads,
        child=json.loads(child_facts.read_text()) if child_facts.exists() else None,
        **_process_facts(),
    )


def child(report: Path, facts: Path) -> None:
    """The test command ``full`` runs: an instrumented child that parses the report, in the parent's trace."""
    from core.coverage.jacoco_parser import JaCoCoXMLParser
    from core.logging import LogCategory, get_logger

    # No explicit context here: the distribution's configurator joins the trace from TRACEPARENT.
    mapping = JaCoCoXMLParser().parse(report, test_id="child-process")
    get_logger("core.e2e.child", category=LogCategory.TESTING).info(
        "child parsed the report", classes=len(mapping.covered_classes)
    )
    facts.write_text(json.dumps({"traceparent": os.environ.get("TRACEPARENT", ""), **_process_facts()}))


# ----------------------------------------------------------------------------------------------- steady mode
def _operation(tracer, parser, index: int) -> None:  # type: ignore[no-untyped-def]
    """One traced operation: a root span and an instrumented JaCoCo parse under it (two spans)."""
    with tracer.start_as_current_span("e2e.operation") as span:
        span.set_attribute("e2e.index", index)
        parser.parse(SAMPLES / "jacoco.xml", test_id=f"op-{index}")


def _report_first_drop(sync_dir: Path) -> None:
    """Touch ``sync_dir/dropped`` once the distribution counts a span it could not export: a whole export
    attempt against the dead collector has failed (the test's outage ends on that, not after a set time)."""
    from crossbridge_otel.configurator import active_pipeline

    pipeline = active_pipeline()
    deadline = time.monotonic() + 120  # bounds a failure only
    while pipeline is not None and time.monotonic() < deadline:
        if pipeline.dropped()["spans"]:
            (sync_dir / "dropped").touch()
            return
        time.sleep(0.01)


def steady(sync_dir: Path) -> None:
    """Operations, a pause the test uses to kill the collector, then paced operations it restarts under."""
    from core.coverage.jacoco_parser import JaCoCoXMLParser

    counter = _count_spans()
    tracer = trace.get_tracer(SCOPE)
    parser = JaCoCoXMLParser()
    for i in range(STEADY_BEFORE):
        _operation(tracer, parser, i)
    # Hand everything created so far to the exporter, so the test can wait for Jaeger to hold all of it.
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    emit(phase="paused", spans_created=counter.ended, **_process_facts())
    go = sync_dir / "go"
    deadline = time.monotonic() + 120
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("workload: the test never said go")
        time.sleep(0.02)
    threading.Thread(target=_report_first_drop, args=(sync_dir,), name="e2e-drop-watch", daemon=True).start()
    for i in range(STEADY_BEFORE, STEADY_BEFORE + STEADY_AFTER):
        _operation(tracer, parser, i)
        time.sleep(STEADY_PACE_S)
    emit(phase="done", spans_created=counter.ended, operations=STEADY_BEFORE + STEADY_AFTER)


def main(argv: list[str]) -> None:
    mode, paths = argv[1], [Path(a) for a in argv[2:]]
    {"full": full, "steady": steady, "child": child}[mode](*paths)
    print(f"E2E-LAST {time.time():.6f}", flush=True)


if __name__ == "__main__":
    main(sys.argv)
