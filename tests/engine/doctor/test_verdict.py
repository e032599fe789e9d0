"""The doctor's verdict from collected facts: the status word, the exit code and the reasons, rule by rule."""

from __future__ import annotations

from crossbridge_otel.doctor.verdict import BROKEN, DEGRADED, HEALTHY, verdict

_CYPRESS = "the module failed to import: SyntaxError: unterminated string literal (line 35)"


def _target(state: str = "patched", module: str = "core.coverage.engine", detail: str = "") -> dict:
    return {"area": "coverage", "module": module, "qualname": "X.f", "span": "coverage.x", "state": state,
            "detail": detail, "crossbridge": module.split(".")[0] in {"core", "adapters", "services", "cli"}}


def _otlp(ok: bool = True) -> dict:
    return {"kind": "otlp", "signals": ["traces", "logs", "metrics"], "protocol": "http/protobuf",
            "where": "http://127.0.0.1:4318", "url": "http://127.0.0.1:4318/v1/traces", "ok": ok,
            "detail": "HTTP 200" if ok else "Connection refused"}


def _report(**changes) -> dict:
    report = {
        "enabled": True, "targets": [_target(), _target(), _target("failed", "core.profiling.hooks.cypress_hook",
                                                                    _CYPRESS)],
        "instrumentors": {"crossbridge_coverage": "loaded"}, "warnings": [], "health": [],
        "destinations": [_otlp()], "summary_at_exit": False,
    }
    report.update(changes)
    return report


def test_all_patched_but_crossbridges_own_failure_is_ok():
    """A target whose CrossBridge module fails to import by itself does not degrade the verdict."""
    result = verdict(_report())
    assert result["exit_code"] == HEALTHY and result["reasons"] == []
    assert result["line"] == ("OK: 2 of 3 targets patched; 1 failed in CrossBridge itself; exporting to "
                              "http://127.0.0.1:4318 (OTLP http/protobuf): reachable")


def test_a_settings_warning_degrades():
    """One settings warning makes the verdict DEGRADED (exit 1) and is the reason."""
    result = verdict(_report(warnings=["OTEL_TRACES_EXPORTER: unknown exporter 'consol'"]))
    assert (result["status"], result["exit_code"]) == ("DEGRADED", DEGRADED)
    assert "1 settings warning(s): OTEL_TRACES_EXPORTER" in result["reasons"][0]


def test_our_patch_failing_or_drift_degrades():
    """A target our patching failed on, or whose attribute is gone, degrades the verdict."""
    failed = verdict(_report(targets=[_target(), _target("failed", detail="TypeError: boom")]))
    drifted = verdict(_report(targets=[_target(), _target("attribute missing", detail="gone")]))
    assert failed["exit_code"] == drifted["exit_code"] == DEGRADED


def test_one_of_two_destinations_down_degrades_all_down_breaks():
    """An unreachable endpoint beside a writable file degrades; when it is the only destination, it breaks."""
    file = {"kind": "file", "signals": ["traces"], "where": "t.jsonl", "ok": True, "detail": "will be created"}
    assert verdict(_report(destinations=[_otlp(False), file]))["exit_code"] == DEGRADED
    assert verdict(_report(destinations=[_otlp(False)]))["exit_code"] == BROKEN


def test_no_destination_breaks_unless_the_summary_is_wanted():
    """Every exporter none and no file is BROKEN; with the exit summary on it is what the user asked for."""
    assert verdict(_report(destinations=[]))["exit_code"] == BROKEN
    assert verdict(_report(destinations=[], summary_at_exit=True))["exit_code"] == HEALTHY


def test_crossbridge_not_importable_breaks_with_the_fix():
    """Every CrossBridge target's module missing: BROKEN, one reason saying how to make CrossBridge importable."""
    missing = [_target("module missing", detail="ModuleNotFoundError: No module named 'core'")] * 3
    result = verdict(_report(targets=[*missing, _target(module="typer.core")]))
    assert result["exit_code"] == BROKEN
    assert result["reasons"][0].startswith("CrossBridge is not importable here (No module named 'core')")
    assert "PYTHONPATH" in result["reasons"][0]


def test_a_library_not_installed_is_not_a_fault():
    """A target in a library that is not installed here (openai, anthropic) is counted, not held against us."""
    result = verdict(_report(targets=[_target(), _target("module missing", "openai._base_client", "not found")]))
    assert result["exit_code"] == HEALTHY and "1 in libraries not installed here" in result["line"]


def test_disabled_distribution():
    """CROSSBRIDGE_OTEL_ENABLED=false is DISABLED, exit 2, whatever else is true."""
    result = verdict(_report(enabled=False))
    assert (result["status"], result["exit_code"]) == ("DISABLED", BROKEN)
    assert result["line"].startswith("DISABLED: CROSSBRIDGE_OTEL_ENABLED=false")
