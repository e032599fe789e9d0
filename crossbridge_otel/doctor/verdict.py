"""The doctor's verdict: one line a user can act on, and the exit code that goes with it.

``OK`` (exit 0): healthy. ``DEGRADED`` (exit 1): telemetry flows, but less than configured. ``BROKEN`` (exit 2):
nothing would be traced or nothing would arrive. ``DISABLED`` (exit 2): ``CROSSBRIDGE_OTEL_ENABLED=false``.
The reasons behind a DEGRADED or BROKEN verdict are listed, one line each, most serious first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["BROKEN", "CROSSBRIDGE_PACKAGES", "DEGRADED", "HEALTHY", "describe_destinations", "verdict"]

HEALTHY, DEGRADED, BROKEN = 0, 1, 2
CROSSBRIDGE_PACKAGES = frozenset({"core", "adapters", "services", "cli", "persistence"})
_OWN_IMPORT_FAILURE = "the module failed to import"  # the target's CrossBridge module raised by itself


def describe_destinations(destinations: list[Mapping[str, Any]]) -> str:
    """``http://localhost:4318 (OTLP http/protobuf): reachable; file out.jsonl: will be created``."""
    parts = []
    for d in destinations:
        if d["kind"] == "otlp":
            state = "reachable" if d["ok"] else f"NOT reachable ({d['detail']})"
            signals = "" if len(d["signals"]) == 3 else f", {'/'.join(d['signals'])}"
            parts.append(f"{d['where']} (OTLP {d['protocol']}{signals}): {state}")
        elif d["kind"] == "file":
            parts.append(f"file {d['where']}: {d['detail']}")
        else:
            parts.append(f"console ({d['signals'][0]})")
    return "; ".join(parts)


def _crossbridge_missing(targets: list[Mapping[str, Any]]) -> str | None:
    """Why CrossBridge cannot be imported here, when none of its target modules is found."""
    ours = [t for t in targets if t.get("crossbridge") and t["state"] != "disabled by configuration"]
    if ours and all(t["state"] == "module missing" for t in ours):
        detail = str(ours[0]["detail"]).removeprefix("ModuleNotFoundError: ")
        return (f"CrossBridge is not importable here ({detail}): run where CrossBridge runs, with its src/ "
                "directory on PYTHONPATH (examples/run-demo.sh and the tests take CROSSBRIDGE_SRC)")
    return None


def _targets(targets: list[Mapping[str, Any]], fatal: list[str], problems: list[str]) -> list[str]:
    """The verdict's target counts; adds what is wrong with the targets to ``fatal``/``problems``."""
    considered = [t for t in targets if t["state"] != "disabled by configuration"]
    patched = sum(1 for t in considered if t["state"] == "patched")
    own = [t for t in considered if t["state"] == "failed" and str(t["detail"]).startswith(_OWN_IMPORT_FAILURE)]
    ours = [t for t in considered if t["state"] == "failed" and t not in own]
    drifted = [t for t in considered if t["state"] == "attribute missing"]
    missing = [t for t in considered if t["state"] == "module missing"]
    missing_cb = [t for t in missing if t.get("crossbridge")]
    parts = [f"{patched} of {len(considered)} targets patched"]
    if own:
        parts.append(f"{len(own)} failed in CrossBridge itself")
    not_importable = _crossbridge_missing(targets)
    if not_importable:
        fatal.append(not_importable)
    elif missing_cb:
        problems.append(f"{len(missing_cb)} target(s) in CrossBridge modules not found here (another CrossBridge "
                        f"version?): {', '.join(sorted({t['module'] for t in missing_cb})[:3])}")
    if missing and len(missing) > len(missing_cb):
        parts.append(f"{len(missing) - len(missing_cb)} in libraries not installed here")
    if ours:
        problems.append(f"{len(ours)} target(s) failed to patch: {ours[0]['module']}.{ours[0]['qualname']}: "
                        f"{ours[0]['detail']}")
    if drifted:
        problems.append(f"{len(drifted)} target(s) not found in their module (CrossBridge changed?): "
                        f"{drifted[0]['module']}.{drifted[0]['qualname']}")
    waiting = sum(1 for t in considered if t["state"] == "waiting for import")
    if waiting:
        parts.append(f"{waiting} waiting for import (not imported here)")
    disabled = len(targets) - len(considered)
    if disabled:
        parts.append(f"{disabled} disabled by configuration")
    return parts


def _export(report: Mapping[str, Any], fatal: list[str], problems: list[str]) -> str:
    destinations = report["destinations"]
    if not destinations:
        if report.get("summary_at_exit"):
            return "exporting nowhere (every exporter none): the summary at exit only"
        fatal.append("nothing is exported: every OTEL_*_EXPORTER is none (or unknown) and "
                     "CROSSBRIDGE_OTEL_LOCAL_OUTPUT is empty")
        return "exporting nowhere"
    failing = [d for d in destinations if not d["ok"]]
    for d in failing:
        what = f"{d['where']} is not reachable" if d["kind"] == "otlp" else f"{d['where']} cannot be written"
        (fatal if len(failing) == len(destinations) else problems).append(f"{what}: {d['detail']}")
    return "exporting to " + describe_destinations(destinations)


def verdict(report: Mapping[str, Any]) -> dict[str, Any]:
    """``{"status", "exit_code", "line", "reasons"}`` for a collected report."""
    if not report.get("enabled", True):
        return {
            "status": "DISABLED", "exit_code": BROKEN, "reasons": [],
            "line": "DISABLED: CROSSBRIDGE_OTEL_ENABLED=false: opentelemetry-instrument loads nothing here "
                    "(no patches, no telemetry)",
        }
    fatal: list[str] = []
    problems: list[str] = []
    parts = _targets(report["targets"], fatal, problems)
    failed_loads = {k: v for k, v in report["instrumentors"].items() if v.startswith("failed")}
    if failed_loads and all(v.startswith(("failed", "not loaded")) for v in report["instrumentors"].values()):
        fatal.append("no CrossBridge instrumentor loaded")
    problems += [f"instrumentor {name}: {state}" for name, state in sorted(failed_loads.items())]
    if report["warnings"]:
        problems.append(f"{len(report['warnings'])} settings warning(s): {report['warnings'][0]}")
    problems += [f"health check {c['name']} is unhealthy: {c['detail']}"
                 for c in report.get("health", []) if not c.get("healthy", True)]
    parts.append(_export(report, fatal, problems))
    status, code = ("BROKEN", BROKEN) if fatal else ("DEGRADED", DEGRADED) if problems else ("OK", HEALTHY)
    return {"status": status, "exit_code": code, "line": f"{status}: " + "; ".join(parts),
            "reasons": [*fatal, *problems]}
