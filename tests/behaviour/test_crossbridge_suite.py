"""Behaviour preservation: CrossBridge's own tests give the same outcome per test with and without the distribution.

The subset SNAPSHOT.md lists (572 tests) runs twice, each from a fresh copy of the CrossBridge tree: plainly, then
under this .venv's ``opentelemetry-instrument`` exporting OTLP/HTTP to a real receiver on 127.0.0.1. CrossBridge's
own failures must stay exactly as they are; any test whose outcome changes is a behaviour change we caused.
"""

from __future__ import annotations

import pytest
from suite_runner import SuiteRun, differences, run_suite
from support.otlp_sink import OtlpSink

pytestmark = pytest.mark.behaviour

# The subset has 572 tests at the pinned commit; far fewer means the run broke, not that CrossBridge shrank.
MIN_TESTS = 500
# First segments of the span names our area instrumentors emit (instrumentors/<area>.py tables).
AREAS = {"profiling", "coverage", "execution", "translation", "orchestration", "repo", "services", "runtime", "cli"}
TIMEOUT = 300.0


def _report(plain: SuiteRun, instrumented: SuiteRun, diff: list[tuple[str, str, str]], sink: OtlpSink) -> str:
    area_spans = [s for _, s in sink.spans() if s.name.split(".", 1)[0] in AREAS]
    lines = [
        f"behaviour: {len(plain.outcomes)} tests, {len(diff)} differ",
        f"  wall time: plain {plain.wall_seconds:.1f} s, instrumented {instrumented.wall_seconds:.1f} s "
        f"(x{instrumented.wall_seconds / plain.wall_seconds:.2f})",
        f"  received: {len(sink.spans())} spans ({len(area_spans)} CrossBridge area spans), "
        f"{len(sink.log_records())} log records, {len(sink.metric_names())} metric names",
    ]
    lines += [f"  DIFFERS {nodeid}: plain {a}, instrumented {b}" for nodeid, a, b in diff]
    return "\n".join(lines)


def test_crossbridge_suite_outcomes_unchanged_under_instrumentation(capsys: pytest.CaptureFixture[str]) -> None:
    """Every CrossBridge test has the same outcome plainly and under opentelemetry-instrument, and telemetry flows."""
    plain = run_suite("plain", timeout=TIMEOUT)
    with OtlpSink() as sink:
        instrumented = run_suite("instrumented", endpoint=sink.endpoint, timeout=TIMEOUT)
        # Export is synchronous at the child's exit, so everything sent has arrived; the wait covers a slow handler.
        sink.wait_for(lambda s: s.spans() and s.log_records(), timeout=5)
        diff = differences(plain, instrumented)
        report = _report(plain, instrumented, diff, sink)
        with capsys.disabled():
            print("\n" + report)
        assert len(plain.outcomes) >= MIN_TESTS, f"plain run saw only {len(plain.outcomes)} tests:\n{plain.output_tail}"
        assert plain.outcomes.keys() == instrumented.outcomes.keys(), report
        assert not diff, report
        exits = f"pytest exit {plain.returncode} plainly, {instrumented.returncode} instrumented"
        assert instrumented.returncode == plain.returncode, f"{exits}:\n{instrumented.output_tail}"
        assert any(s.name.split(".", 1)[0] in AREAS for _, s in sink.spans()), report
        assert sink.log_records(), report
