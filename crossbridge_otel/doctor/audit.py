"""The audit report: per CrossBridge module of the audited areas, what this distribution covers, or why not.

It is computed from the running environment, never from a static claim:

- **traced**: how many of the module's span targets are patched (status registry,
  :mod:`crossbridge_otel.patching.status`), else the state and reason of the first one (waiting for import,
  module missing, failed: ...);
- **logs**: whether the module's logger is bridged (a ``CrossBridgeLogger`` or a stdlib logger under
  ``core``/``adapters``/``services`` carrying the log bridge's handler), or what it has instead;
- **retry**: read from the rows' invokers: the targets retried under a named policy (``Retry("quick")``) and
  CrossBridge's own retry loops observed as ``retry`` events (``ObservedRetry(...)``), or none;
- **health**: the health check of :mod:`crossbridge_otel.doctor.health` covering the module's store, and whether it
  is configured.

Usage (``crossbridge-otel doctor`` prints it)::

    from crossbridge_otel.doctor.audit import audit_rows, audit_warnings, render_audit
    print(render_audit(audit_rows()))

The audited modules are the instrumentors' target modules (``crossbridge_otel.instrumentors.areas``, one per area:
profiling, coverage, execution, translation, orchestration, repo, services, runtime) plus the audited modules
that cannot be patched at all (:data:`UNPATCHABLE`, with the reason). Nothing here imports CrossBridge.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from crossbridge_otel.instrumentors.areas import area_entry_points
from crossbridge_otel.patching import status
from crossbridge_otel.patching.status import State
from crossbridge_otel.retry.invoker import Retry
from crossbridge_otel.retry.observed import ObservedRetry

__all__ = ["AUDITED_AREAS", "UNPATCHABLE", "AuditRow", "audit_rows", "audit_warnings", "render_audit"]

AUDITED_AREAS = ("profiling", "coverage", "execution", "translation", "orchestration", "repo", "services", "runtime")

# Audited modules no instrumentation can patch, and why (CrossBridge's own breakage at 714a3f5b).
UNPATCHABLE: dict[str, tuple[str, str]] = {
    "core.profiling.hooks.cypress_hook": (
        "profiling", "CrossBridge's file is a SyntaxError (unterminated string literal, line 35)"),
    "core.translation.parsers.robot_parser": (
        "translation", "missing from CrossBridge; the ModuleNotFoundError is recorded on translation.setup"),
}

# Stores the health checks of crossbridge_otel.doctor.health cover: module → (check, setting that configures it).
_HEALTH: dict[str, tuple[tuple[str, str], ...]] = {
    "core.profiling.storage": (("postgres", "health_postgres"), ("influxdb", "health_influxdb")),
    "core.coverage.repository": (("coverage_db", "health_coverage_db"),),
}
_LOG_PACKAGES = ("core", "adapters", "services")


@dataclass(frozen=True)
class AuditRow:
    """One audited module: each column is a short verdict (``ok`` flags say whether it is covered)."""

    area: str
    module: str
    traced: str
    traced_ok: bool
    logs: str
    logs_ok: bool
    retry: str
    health: str


def _instrumentor_classes() -> list[Any]:
    """The CrossBridge area instrumentor classes, in audited-area order."""
    classes = []
    for ep in area_entry_points():
        try:
            cls = ep.load()
        except Exception:  # a broken area shows up as "not instrumented" below; the audit itself must not fail
            continue
        if getattr(cls, "area", "") in AUDITED_AREAS:
            classes.append(cls)
    return sorted(classes, key=lambda c: AUDITED_AREAS.index(c.area))


def _traced(area: str, module: str, targets: list[Any], states: dict[tuple[str, str, str], Any]) -> tuple[str, bool]:
    found = [states.get((area, module, t.qualname)) for t in targets]
    patched = sum(1 for s in found if s is not None and s.state == State.PATCHED)
    if patched:
        return f"{patched}/{len(targets)} spans", patched == len(targets)
    known = [s for s in found if s is not None]
    if not known:
        return f"not instrumented ({len(targets)} targets)", False
    first = known[0]
    detail = f": {first.detail}" if first.detail and first.state != State.WAITING else ""
    return f"{first.state.value}{detail}"[:120], False


def _bridged(logger: logging.Logger) -> bool:
    current: logging.Logger | None = logger
    while current is not None:
        if any(type(h).__module__.startswith("crossbridge_otel") for h in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent  # type: ignore[assignment]
    return False


def _logs(module: str) -> tuple[str, bool]:
    loaded = sys.modules.get(module)
    if loaded is None:
        return "not imported", False
    candidates = [v for v in vars(loaded).values() if type(v).__name__ == "CrossBridgeLogger"
                  or isinstance(v, logging.Logger)]
    if not candidates:
        return "no logger (prints or silent)", False
    found = candidates[0]
    if type(found).__name__ == "CrossBridgeLogger":
        inner = getattr(found, "_logger", None)
        category = getattr(getattr(found, "category", None), "value", getattr(found, "category", "?"))
        if isinstance(inner, logging.Logger) and _bridged(inner):
            return f"bridged (CrossBridgeLogger, {category})", True
        return f"CrossBridgeLogger ({category}) not bridged", False
    assert isinstance(found, logging.Logger)
    if found.name.split(".")[0] in _LOG_PACKAGES and _bridged(found):
        return "bridged (stdlib logger)", True
    return f"stdlib logger {found.name} not bridged", False


def _retry(targets: list[Any]) -> str:
    """The retry column, from the rows' invokers: targets retried per policy, CrossBridge's own loops observed."""
    by_policy: dict[str, int] = {}
    observed = False
    for target in targets:
        for spec in getattr(target, "invokers", ()):
            if isinstance(spec, Retry):
                by_policy[spec.label] = by_policy.get(spec.label, 0) + 1
            observed = observed or isinstance(spec, ObservedRetry)
    parts = [f"{policy}: {count} call(s)" for policy, count in by_policy.items()]
    if observed:
        parts.append("own loop observed")
    return "; ".join(parts) if parts else "none"


def _health(module: str, settings: Any) -> str:
    checks = _HEALTH.get(module)
    if not checks:
        return "n/a (no store)"
    out = []
    for name, setting in checks:
        configured = bool(getattr(settings, setting, "")) if settings is not None else False
        out.append(f"{name}{'' if configured else ' (not configured)'}")
    return ", ".join(out)


def audit_rows(instrumentors: Iterable[Any] | None = None) -> list[AuditRow]:
    """One row per audited module, from this process's state (the doctor instruments first, then calls this).

    ``instrumentors``: the instrumentor classes to audit (default: every area's).
    """
    try:
        from crossbridge_otel.settings import load as load_settings

        settings: Any = load_settings(warn=False)
    except Exception:
        settings = None
    states = {(s.area, s.module, s.qualname): s for s in status.snapshot()}
    rows: list[AuditRow] = []
    for cls in instrumentors if instrumentors is not None else _instrumentor_classes():
        by_module: dict[str, list[Any]] = {}
        for target in cls.targets:
            by_module.setdefault(target.module, []).append(target)
        for module, targets in by_module.items():
            traced, traced_ok = _traced(cls.area, module, targets, states)
            # The status registry's own reason wins once the module was tried; the table's text is for before.
            if module in UNPATCHABLE and not traced_ok and traced.startswith("not instrumented"):
                traced = f"cannot be traced: {UNPATCHABLE[module][1]}"
            logs, logs_ok = _logs(module)
            rows.append(AuditRow(cls.area, module, traced, traced_ok, logs, logs_ok,
                                 _retry(targets), _health(module, settings)))
    listed = {row.module for row in rows}
    for module, (area, reason) in UNPATCHABLE.items():
        if module in listed:
            continue
        rows.append(AuditRow(area, module, f"cannot be traced: {reason}", False, "n/a", False, "n/a", "n/a"))
    rows.sort(key=lambda r: (AUDITED_AREAS.index(r.area) if r.area in AUDITED_AREAS else 99, r.module))
    return rows


def audit_warnings(environ: dict[str, str] | None = None) -> list[str]:
    """Environment problems the audit must point out (TARGETS.md §0.2)."""
    env = os.environ if environ is None else environ
    warnings = []
    if env.get("CROSSBRIDGE_HOOKS_ENABLED", "").strip().lower() != "false":
        warnings.append(
            "CROSSBRIDGE_HOOKS_ENABLED is not 'false': importing core.orchestration (and core.orchestration.batch) "
            "makes CrossBridge connect to PostgreSQL at import time, to a hard-coded address with no "
            "connect_timeout. Set CROSSBRIDGE_HOOKS_ENABLED=false (or CROSSBRIDGE_DB_URL) before running.")
    return warnings


def _table(header: list[str], rows: list[list[str]], cell: Callable[[str, int], str]) -> list[str]:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(len(header))]
    line = "  ".join(h.ljust(widths[i]) for i, h in enumerate(header))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(cell(r[i], widths[i]) for i in range(len(header))) for r in rows]
    return out


def render_audit(rows: list[AuditRow], warnings: list[str] | None = None) -> str:
    """The audit as a plain-text table (one line per module), then the warnings (default: audit_warnings())."""
    header = ["area", "module", "traced", "logs", "retry", "health"]
    body = [[r.area, r.module, r.traced, r.logs, r.retry, r.health] for r in rows]
    lines = _table(header, body, lambda text, width: text.ljust(width))
    covered = sum(r.traced_ok for r in rows)
    lines.append(f"{covered}/{len(rows)} modules fully traced, {sum(r.logs_ok for r in rows)} with logs bridged")
    for warning in audit_warnings() if warnings is None else warnings:
        lines.append(f"WARNING: {warning}")
    return "\n".join(line.rstrip() for line in lines)

