"""The audit report: computed from the running environment (status registry, tables, log bridge, settings)."""

from __future__ import annotations

from crossbridge_otel.doctor.audit import UNPATCHABLE, audit_rows, audit_warnings, render_audit
from crossbridge_otel.instrumentors.execution import ExecutionInstrumentor
from crossbridge_otel.instrumentors.repo import RepoInstrumentor


def _row(rows, module):
    (row,) = [r for r in rows if r.module == module]
    return row


def test_patched_modules_are_counted_per_module(instrument):
    """An instrumented, imported module shows patched/targets spans; its area's other modules too."""
    import core.execution.executor  # noqa: F401
    import core.repo.bitbucket  # noqa: F401

    instrument(ExecutionInstrumentor)
    instrument(RepoInstrumentor)
    rows = audit_rows([ExecutionInstrumentor, RepoInstrumentor])
    executor = _row(rows, "core.execution.executor")
    assert executor.traced == "2/2 spans" and executor.traced_ok
    bitbucket = _row(rows, "core.repo.bitbucket")
    assert bitbucket.traced_ok and bitbucket.traced.startswith("16/16")
    assert bitbucket.retry == "quick: 6 call(s); own loop observed"
    assert _row(rows, "core.execution.strategies").retry == "own loop observed"
    assert _row(rows, "core.execution.executor").retry == "none"


def test_not_instrumented_area_says_so():
    """Without instrument() the rows say 'not instrumented' and how many targets there would be."""
    rows = audit_rows([RepoInstrumentor])
    row = _row(rows, "core.repo.bitbucket")
    assert row.traced == "not instrumented (16 targets)" and not row.traced_ok


def test_logs_column_follows_the_log_bridge(instrument):
    """A CrossBridgeLogger module is 'bridged' only while the log bridge is installed."""
    import core.execution.results.normalizer  # noqa: F401

    import crossbridge_otel.instrumentors.logging as logging_mod

    before = _row(audit_rows([ExecutionInstrumentor]), "core.execution.results.normalizer")
    assert not before.logs_ok and "not bridged" in before.logs
    instrument(logging_mod.LoggingInstrumentor)
    after = _row(audit_rows([ExecutionInstrumentor]), "core.execution.results.normalizer")
    assert after.logs_ok and after.logs == "bridged (CrossBridgeLogger, execution)"


def test_unpatchable_modules_are_listed_with_the_reason():
    """cypress_hook and robot_parser are in the audit once, with why they cannot be traced."""
    rows = audit_rows([])
    assert {r.module for r in rows} == set(UNPATCHABLE)
    assert "SyntaxError" in _row(rows, "core.profiling.hooks.cypress_hook").traced
    import crossbridge_otel.instrumentors.profiling as profiling
    row = _row(audit_rows([profiling.ProfilingInstrumentor]), "core.profiling.hooks.cypress_hook")
    assert row.traced.startswith("cannot be traced") and not row.traced_ok


def test_health_column_reports_configuration(monkeypatch):
    """The coverage repository row names the coverage_db check and whether it is configured."""
    from crossbridge_otel.instrumentors.coverage import CoverageInstrumentor

    monkeypatch.delenv("CROSSBRIDGE_OTEL_HEALTH_COVERAGE_DB", raising=False)
    assert _row(audit_rows([CoverageInstrumentor]), "core.coverage.repository").health == "coverage_db (not configured)"
    monkeypatch.setenv("CROSSBRIDGE_OTEL_HEALTH_COVERAGE_DB", "/tmp/c.db")
    assert _row(audit_rows([CoverageInstrumentor]), "core.coverage.repository").health == "coverage_db"


def test_hooks_warning():
    """CROSSBRIDGE_HOOKS_ENABLED other than 'false' is warned about (import-time database connection)."""
    assert audit_warnings({}) and "CROSSBRIDGE_HOOKS_ENABLED" in audit_warnings({})[0]
    assert audit_warnings({"CROSSBRIDGE_HOOKS_ENABLED": "false"}) == []


def test_render_is_one_line_per_module_with_a_summary():
    """render_audit: header, rule, one line per row, a summary line, then the warnings given."""
    rows = audit_rows([RepoInstrumentor])
    text = render_audit(rows, warnings=["w1"])
    lines = text.splitlines()
    assert lines[0].split() == ["area", "module", "traced", "logs", "retry", "health"]
    assert len(lines) == 2 + len(rows) + 2 and lines[-1] == "WARNING: w1"
    assert sum("core.repo.bitbucket" in line for line in lines) == 1
