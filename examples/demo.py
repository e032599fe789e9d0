"""A CrossBridge workload to run under ``opentelemetry-instrument`` (the README's main job).

With the real CrossBridge importable (its packages ``core``, ``adapters``... on the path) the workload uses it.
Otherwise it uses the CrossBridge-shaped sample modules shipped in this repository's ``tests/fixtures`` and
says so: those follow CrossBridge's module paths, signatures and return conventions, but they are our own
stand-ins, not CrossBridge.

Nothing here talks to OpenTelemetry except one root span around the whole run: every other span, log record
and metric comes from the distribution patching the modules as they are imported.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "tests" / "samples"


def _use_crossbridge_or_samples() -> str:
    os.environ.setdefault("CROSSBRIDGE_HOOKS_ENABLED", "false")  # no database connection at import (TARGETS §0.2)
    if importlib.util.find_spec("core") is not None and importlib.util.find_spec("core.coverage") is not None:
        return "CrossBridge (importable in this environment)"
    sys.path.insert(0, str(REPO / "tests" / "fixtures" / "crossbridge"))
    return "the CrossBridge-SHAPED SAMPLE WORKLOAD (tests/fixtures: CrossBridge is not installed here)"


def run(workdir: Path) -> None:
    from core.coverage.coverage_py_parser import CoveragePyParser
    from core.coverage.engine import CoverageMappingEngine
    from core.coverage.jacoco_parser import JaCoCoXMLParser
    from core.execution.results.normalizer import ResultNormalizer
    from core.execution.results.result_comparer import ResultComparer
    from core.logging import LogCategory, get_logger
    from core.profiling.collector import MetricsCollector
    from core.profiling.models import ProfileConfig, StorageBackendType
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    log = get_logger("demo.workload", LogCategory.EXECUTION)
    log.info("demo workload starting", samples=str(SAMPLES))

    collector = MetricsCollector.get_instance(
        ProfileConfig(enabled=True, backend=StorageBackendType.LOCAL, local_path=str(workdir / "profiles"))
    )
    collector.start()
    collector.record_test_start("LoginTest#testLogin", "junit")

    jacoco = JaCoCoXMLParser().parse(SAMPLES / "jacoco.xml", test_id="LoginTest#testLogin")
    log.success("JaCoCo report parsed", classes=len(jacoco.covered_classes))
    CoveragePyParser().parse(SAMPLES / "coverage.xml", "t")  # CrossBridge swallows this: the span says ERROR
    try:
        JaCoCoXMLParser().parse(SAMPLES / "missing.xml")
    except FileNotFoundError:
        log.warning("missing report, as expected")

    engine = CoverageMappingEngine(workdir / "coverage.db")
    command = f"mkdir -p target/site/jacoco && cp {SAMPLES / 'jacoco.xml'} target/site/jacoco/jacoco.xml"
    engine.collect_coverage_isolated("LoginTest#testLogin", command, workdir)

    translation = TranslationPipeline(TranslationConfig("selenium-java", "playwright-python")).translate(
        (SAMPLES / "LoginTest.java").read_text()
    )
    log.info("translated", success=translation.success, actions=translation.actions_translated)

    normalizer = ResultNormalizer()
    baseline = normalizer.normalize(SAMPLES / "junit-baseline.xml")
    current = normalizer.normalize(SAMPLES / "junit-current.xml")
    if baseline is not None and current is not None:
        comparison = ResultComparer().compare(baseline, current)
        log.info("compared runs", regressions=comparison.regressions)

    collector.record_test_end("LoginTest#testLogin", "junit", status="passed", duration_ms=12.0)
    collector.shutdown()
    MetricsCollector.reset_instance()


def main() -> None:
    what = _use_crossbridge_or_samples()
    print(f"crossbridge-otel demo: running {what}")
    from opentelemetry import trace

    tracer = trace.get_tracer("crossbridge_otel.demo")
    with tempfile.TemporaryDirectory() as tmp, tracer.start_as_current_span("demo.run"):
        run(Path(tmp))
    print("crossbridge-otel demo: done")


if __name__ == "__main__":
    main()
