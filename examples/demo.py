"""The main job's workload: real CrossBridge work, run under ``opentelemetry-instrument`` by run-demo.sh.

CrossBridge must be importable (run-demo.sh puts ``$CROSSBRIDGE_SRC``, else ``../shared/crossbridge/src``, on
``PYTHONPATH``); there is no stand-in. The workload uses CrossBridge's own classes on the small inputs in
``tests/samples``, all offline, in a temporary working directory:

- profiling: ``MetricsCollector`` with the local JSONL backend (its storage writes on its flush thread);
- coverage: JaCoCo and coverage.py parses (one CrossBridge swallows: its span is ERROR ``returned_none``; one
  that raises ``FileNotFoundError``), and ``CoverageMappingEngine.collect_coverage_isolated`` running a shell
  command, then parsing the report and saving it to its SQLite database;
- translation: Selenium Java → Playwright Python (succeeds) and Cypress → pytest (CrossBridge reports
  ``success=False``: ERROR ``translation_failed`` with its own error text);
- execution results: two JUnit reports normalised and compared;
- runtime: CrossBridge's own ``retry_with_backoff`` around a call that fails twice (``retry`` span events).

Nothing here talks to OpenTelemetry except one root span, ``demo.run``, around the whole run: every other span,
log record and metric comes from the distribution patching CrossBridge as its modules are imported.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "tests" / "samples"
TEST_ID = "LoginTest#testLogin"


def step(what: str) -> None:
    print(f"== demo: {what}", flush=True)


def _crossbridge_or_exit() -> Path:
    """Where CrossBridge is imported from; a clear message and exit 2 when it cannot be imported."""
    # Forced, not defaulted: with hooks on, CrossBridge's hook SDK connects to its database at import.
    os.environ["CROSSBRIDGE_HOOKS_ENABLED"] = "false"
    if importlib.util.find_spec("core") is None or importlib.util.find_spec("core.coverage") is None:
        sys.exit(
            "crossbridge-otel demo: CrossBridge is not importable. Point CROSSBRIDGE_SRC at a CrossBridge checkout "
            "(the directory holding core/, adapters/, cli/) and run examples/run-demo.sh again."
        )
    import core

    return Path(core.__file__).resolve().parents[1]


def profiling_start(workdir: Path):  # type: ignore[no-untyped-def]
    from core.profiling.collector import MetricsCollector
    from core.profiling.models import ProfileConfig, StorageBackendType

    step("profiling: MetricsCollector with the local backend, test start")
    config = ProfileConfig(enabled=True, backend=StorageBackendType.LOCAL, local_path=str(workdir / "profiles"))
    collector = MetricsCollector.get_instance(config)
    collector.start()
    collector.record_test_start(TEST_ID, "junit")
    return collector


def coverage(workdir: Path, log) -> None:  # type: ignore[no-untyped-def]
    from core.coverage.coverage_py_parser import CoveragePyParser
    from core.coverage.engine import CoverageMappingEngine
    from core.coverage.jacoco_parser import JaCoCoXMLParser

    step("coverage: JaCoCo and coverage.py reports (one swallowed failure, one exception)")
    jacoco = JaCoCoXMLParser().parse(SAMPLES / "jacoco.xml", test_id=TEST_ID)
    log.success("JaCoCo report parsed", classes=len(jacoco.covered_classes))
    CoveragePyParser().parse(SAMPLES / "coverage.json", test_name="test_login")
    CoveragePyParser().parse(SAMPLES / "coverage.xml", test_name="test_login")  # XML, not JSON: None, printed
    try:
        JaCoCoXMLParser().parse(workdir / "missing.xml")
    except FileNotFoundError:
        log.warning("missing report, as expected")

    step("coverage: CoverageMappingEngine.collect_coverage_isolated (a shell command, then SQLite)")
    project = workdir / "project"
    project.mkdir()
    command = f"mkdir -p target/site/jacoco && cp '{SAMPLES / 'jacoco.xml'}' target/site/jacoco/jacoco.xml"
    CoverageMappingEngine(workdir / "coverage.db").collect_coverage_isolated(TEST_ID, command, project)


def translation(log) -> None:  # type: ignore[no-untyped-def]
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    step("translation: selenium-java -> playwright-python, cypress -> pytest (CrossBridge says it cannot)")
    good = TranslationPipeline(TranslationConfig("selenium-java", "playwright-python")).translate(
        (SAMPLES / "LoginTest.java").read_text(encoding="utf-8"), source_file="LoginTest.java"
    )
    log.info("translated", success=good.success, actions=good.actions_translated)
    bad = TranslationPipeline(TranslationConfig("cypress", "pytest")).translate(
        (SAMPLES / "login.cy.js").read_text(encoding="utf-8"), source_file="login.cy.js"
    )
    log.info("translation refused", success=bad.success, errors=len(bad.errors))


def results(log) -> None:  # type: ignore[no-untyped-def]
    from core.execution.results.normalizer import ResultNormalizer
    from core.execution.results.result_comparer import ResultComparer

    step("execution results: two JUnit runs normalised and compared")
    normalizer = ResultNormalizer()
    baseline = normalizer.normalize(SAMPLES / "junit-baseline.xml")
    current = normalizer.normalize(SAMPLES / "junit-current.xml")
    if baseline is not None and current is not None:
        comparison = ResultComparer().compare(baseline, current)
        log.info("compared runs", regressions=comparison.regressions)


def runtime() -> None:
    from core.runtime.retry import RetryPolicy, retry_with_backoff

    step("runtime: retry_with_backoff around a call that fails twice")
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError(f"service unavailable (call {len(calls)})")
        return "ok"

    retry_with_backoff(flaky, RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05))


def run(workdir: Path) -> None:
    from core.logging import LogCategory, get_logger
    from core.profiling.collector import MetricsCollector

    log = get_logger("demo.workload", LogCategory.EXECUTION)
    log.info("demo workload starting", samples=str(SAMPLES))
    collector = profiling_start(workdir)
    coverage(workdir, log)
    translation(log)
    results(log)
    runtime()
    step("profiling: test end, collector shutdown")
    collector.record_test_end(TEST_ID, "junit", duration_ms=12, status="passed")
    collector.shutdown()
    MetricsCollector.reset_instance()


def main() -> None:
    where = _crossbridge_or_exit()
    print(f"crossbridge-otel demo: running the real CrossBridge from {where}", flush=True)
    from opentelemetry import trace

    tracer = trace.get_tracer("crossbridge_otel.demo")
    # CrossBridge reads crossbridge.yml from, and may write into, the working directory: use a fresh one.
    with tempfile.TemporaryDirectory(prefix="crossbridge-demo-") as tmp, tracer.start_as_current_span("demo.run"):
        os.chdir(tmp)
        try:
            run(Path(tmp))
        finally:
            os.chdir(REPO)
    print("crossbridge-otel demo: done", flush=True)


if __name__ == "__main__":
    main()
