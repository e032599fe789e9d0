"""``crossbridge-otel doctor``: what the distribution would do in this environment, and whether it can.

It applies the distro's defaults, instruments every enabled CrossBridge area with non-exporting providers,
imports each target module (guarded; with ``CROSSBRIDGE_HOOKS_ENABLED=false`` unless the user set it, so
``core.orchestration`` does not connect to a database at import), and reports, first line a verdict::

    OK: 175 of 176 targets patched; 1 failed in CrossBridge itself; exporting to http://localhost:4318 (OTLP): reachable

Exit codes (:mod:`crossbridge_otel.doctor.verdict`):

- ``0`` healthy (``OK``): every target patched, except those whose CrossBridge module fails to import by itself or
  that belong to a library not installed here; every destination takes telemetry; no settings warnings.
- ``1`` degraded (``DEGRADED``): telemetry flows, but less than configured: a settings warning (ours or a
  standard ``OTEL_*`` one), a target that failed or drifted, an instrumentor that failed to load, one of several
  destinations unreachable or unwritable, an unhealthy health check.
- ``2`` broken (``BROKEN``) or off (``DISABLED``): nothing would be traced or nothing would arrive: CrossBridge not
  importable, ``CROSSBRIDGE_OTEL_ENABLED=false``, no destination at all, or none that answers / can be written.
  (argparse's usage errors also exit 2.)

The rest: each destination (OTLP endpoints probed, ``none`` said as such, the local output file checked for
writing), settings with their source and every settings warning, each instrumentor's load state, every target's
status grouped by state and reason (``-v``: one line each), the health checks and the audit table.
``--json`` prints the same data as JSON, only JSON, on stdout.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from crossbridge_otel import otel_env
from crossbridge_otel import settings as settings_mod
from crossbridge_otel.distro import DEFAULTS
from crossbridge_otel.doctor.render import render
from crossbridge_otel.doctor.verdict import CROSSBRIDGE_PACKAGES, verdict
from crossbridge_otel.export.pipeline import exporter_names, otlp_protocol
from crossbridge_otel.patching import status
from crossbridge_otel.patching.status import State
from crossbridge_otel.redaction import redact

__all__ = ["collect", "local_output_state", "probe_endpoint", "render"]

SIGNALS = ("traces", "logs", "metrics")


def _effective_environ() -> dict[str, str]:
    env = dict(os.environ)
    for name, value in DEFAULTS.items():
        env.setdefault(name, value)
    if "service.name=" not in env.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        env.setdefault("OTEL_SERVICE_NAME", "crossbridge")
    return env


def _endpoint(signal: str, env: Mapping[str, str]) -> tuple[str, str]:
    protocol = "grpc" if otlp_protocol(signal, env) == "grpc" else "http/protobuf"
    specific = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    if specific:
        return protocol, specific
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if protocol == "grpc":
        return protocol, base or "http://localhost:4317"
    return protocol, (base.rstrip("/") if base else "http://localhost:4318") + f"/v1/{signal}"


def probe_endpoint(protocol: str, url: str, timeout: float = 1.0) -> tuple[bool, str]:
    """Does the OTLP endpoint answer? HTTP: POST an empty export request; gRPC: a TCP connect."""
    parsed = urllib.parse.urlparse(url if "://" in url else f"http://{url}")
    host = parsed.hostname or "localhost"
    port = parsed.port or (4317 if protocol == "grpc" else 4318)
    if protocol == "grpc":
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True, f"TCP connection to {host}:{port} accepted"
        except OSError as exc:
            return False, f"{host}:{port}: {exc.strerror or exc}"
    request = urllib.request.Request(
        url, data=b"", method="POST", headers={"Content-Type": "application/x-protobuf"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return True, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return exc.code < 500, f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, str(getattr(reason, "strerror", None) or reason)


def local_output_state(path: str) -> tuple[bool, str]:
    """Can ``CROSSBRIDGE_OTEL_LOCAL_OUTPUT`` be written? (Checked without creating anything.)"""
    target = Path(path).expanduser()
    if target.is_dir():
        return False, "NOT writable: it is a directory"
    if target.exists():
        if os.access(target, os.W_OK):
            return True, "writable (appended to)"
        return False, "NOT writable: permission denied"
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return False, f"NOT writable: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return False, f"NOT writable: {parent} is not writable"
    return True, "will be created"


def _destinations(env: Mapping[str, str], local_output: str) -> list[dict[str, Any]]:
    """Where telemetry would go: OTLP endpoints (probed once each), the console, the local output file."""
    destinations: list[dict[str, Any]] = []
    otlp: dict[tuple[str, str], dict[str, Any]] = {}
    for signal in SIGNALS:
        names = [n for n in exporter_names(signal, env) if n in otel_env.EXPORTERS]
        if "otlp" in names:
            protocol, url = _endpoint(signal, env)
            parsed = urllib.parse.urlparse(url if "://" in url else f"http://{url}")
            base = f"{parsed.scheme}://{parsed.netloc}"
            entry = otlp.get((protocol, base))
            if entry is None:
                answers, detail = probe_endpoint(protocol, url)
                entry = otlp[(protocol, base)] = {
                    "kind": "otlp", "signals": [], "protocol": protocol, "where": redact(base),
                    "url": redact(url), "ok": answers, "detail": detail,
                }
                destinations.append(entry)
            entry["signals"].append(signal)
        if "console" in names:
            destinations.append({"kind": "console", "signals": [signal], "where": "stdout", "ok": True,
                                 "detail": "printed on the process's stdout"})
    if local_output:
        ok, detail = local_output_state(local_output)
        destinations.append({"kind": "file", "signals": list(SIGNALS), "where": local_output, "ok": ok,
                             "detail": detail})
    return destinations


def _instrumentor_entry_points() -> list[Any]:
    """One entry point per CrossBridge area (all behind our one ``crossbridge`` entry point)."""
    from crossbridge_otel.instrumentors.areas import area_entry_points

    return list(area_entry_points())


def _instrument_all(env: Mapping[str, str], loaded: dict[str, str], enabled: bool) -> list[Any]:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from crossbridge_otel.instrumentors.areas import ENTRY_POINT, disabled_names

    disabled = disabled_names(env)
    providers = {
        "tracer_provider": TracerProvider(),
        "meter_provider": MeterProvider(),
        "logger_provider": LoggerProvider(),
    }
    instances = []
    for ep in _instrumentor_entry_points():
        try:
            cls = ep.load()
        except Exception as exc:
            loaded[ep.name] = f"failed to load: {type(exc).__name__}: {exc}"
            continue
        targets = getattr(cls, "targets", ())
        area = getattr(cls, "area", ep.name)
        why = (
            "CROSSBRIDGE_OTEL_ENABLED=false" if not enabled
            else "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS" if disabled & {ep.name, ENTRY_POINT, "*"} else ""
        )
        if why:
            loaded[ep.name] = f"not loaded: {why}"
            for t in targets:
                status.record(area, t.module, t.qualname, t.span, State.DISABLED, why)
            continue
        try:
            instance = cls()
            instance.instrument(**providers)
            instances.append(instance)
            loaded[ep.name] = "loaded"
        except Exception as exc:
            loaded[ep.name] = f"failed: {type(exc).__name__}: {exc}"
    return instances


def _module_exists(name: str) -> bool:
    """Whether ``name`` can be found, importing at most its parent packages."""
    try:
        return importlib.util.find_spec(name) is not None
    except Exception:  # ImportError, ValueError, or a parent package failing at import: not found here
        return False


def _import_targets(modules: list[str]) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for name in modules:
        try:
            importlib.import_module(name)
            outcomes[name] = "imported"
        except BaseException as exc:  # a target module may even call sys.exit at import
            outcomes[name] = f"{type(exc).__name__}: {exc}"
    return outcomes


def _target_rows(imports: Mapping[str, str]) -> list[dict[str, Any]]:
    rows = []
    for entry in status.snapshot():
        row = asdict(entry)
        row["state"] = entry.state.value
        if entry.state == State.WAITING and not _module_exists(entry.module):
            row["state"] = State.MODULE_MISSING.value
            row["detail"] = imports.get(entry.module, "") or "not found on sys.path"
        row["crossbridge"] = entry.module.split(".")[0] in CROSSBRIDGE_PACKAGES
        rows.append(row)
    return rows


def _consistent_audit(audit: list[dict[str, Any]], targets: list[dict[str, Any]]) -> None:
    """The audit's 'traced' column from the same target states and reasons the targets list shows."""
    by_module: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in targets:
        by_module.setdefault((row["area"], row["module"]), []).append(row)
    for entry in audit:
        rows = by_module.get((entry.get("area", ""), entry.get("module", "")), [])
        bad = [r for r in rows if r["state"] != State.PATCHED.value]
        if not bad or entry.get("traced_ok"):
            continue
        first = bad[0]
        reason = f"{first['state']}: {first['detail']}" if first["detail"] else first["state"]
        patched = len(rows) - len(bad)
        entry["traced"] = f"{patched}/{len(rows)} spans; {reason}" if patched else reason


def collect(import_targets: bool = True) -> dict[str, Any]:
    """Gather the whole report as plain data (the ``--json`` output), verdict included."""
    env = _effective_environ()
    loaded_settings = settings_mod.load(env, warn=False)
    warnings = [*loaded_settings.warnings, *otel_env.check(env)]
    notes = []
    hooks_value = os.environ.get("CROSSBRIDGE_HOOKS_ENABLED")
    if (hooks_value or "").strip().lower() != "false":
        notes.append(
            "CROSSBRIDGE_HOOKS_ENABLED is not set to false: importing core.orchestration makes CrossBridge "
            "connect to its hard-coded database at import time, with no timeout (set "
            "CROSSBRIDGE_HOOKS_ENABLED=false, or CROSSBRIDGE_DB_URL to a reachable database)"
        )
    if hooks_value is None:
        os.environ["CROSSBRIDGE_HOOKS_ENABLED"] = "false"  # for doctor's own imports only
    enabled = bool(loaded_settings.enabled)
    loaded: dict[str, str] = {}
    instances = _instrument_all(env, loaded, enabled)
    modules = sorted({t.module for inst in instances for t in getattr(inst, "targets", ())})
    imports = _import_targets(modules) if import_targets else {}
    targets = _target_rows(imports)
    sections = _optional_sections() if enabled else {}  # the audit reads the live state: before uninstrumenting
    if "audit" in sections:
        _consistent_audit(sections["audit"], targets)
    for inst in instances:
        try:
            inst.uninstrument()
        except Exception as exc:
            warnings.append(f"uninstrumenting {type(inst).__name__} failed: {exc}")
    destinations = _destinations(env, str(loaded_settings.local_output)) if enabled else []
    first_otlp = next((d for d in destinations if d["kind"] == "otlp"), None)
    report: dict[str, Any] = {
        "version": _version(),
        "python": sys.version.split()[0],
        "enabled": enabled,
        "settings": {
            s.env: {"value": loaded_settings.values[s.key], "source": loaded_settings.sources[s.key]}
            for s in settings_mod.SETTINGS
        },
        "exporters": {sig: exporter_names(sig, env) for sig in SIGNALS},
        "destinations": destinations,
        "endpoint": {
            "protocol": first_otlp["protocol"], "url": first_otlp["url"], "answers": first_otlp["ok"],
            "detail": first_otlp["detail"],
        } if first_otlp else {"protocol": "", "url": "", "answers": None, "detail": "no signal exports over OTLP"},
        "summary_at_exit": bool(loaded_settings.summary),
        "service_name": env.get("OTEL_SERVICE_NAME", ""),
        "instrumentors": loaded,
        "warnings": warnings,
        "notes": notes,
        "targets": targets,
        "imports": imports,
    }
    report.update(sections)
    report["verdict"] = verdict(report)
    return report


def _version() -> str:
    from crossbridge_otel.version import __version__

    return __version__


def _optional_sections() -> dict[str, Any]:
    sections: dict[str, Any] = {}
    try:
        audit = importlib.import_module("crossbridge_otel.doctor.audit")
        rows = audit.audit_rows()
        sections["audit"] = [asdict(r) if hasattr(r, "__dataclass_fields__") else r for r in rows]
    except ModuleNotFoundError:
        pass
    except Exception as exc:
        sections["audit_error"] = f"{type(exc).__name__}: {exc}"
    try:
        health = importlib.import_module("crossbridge_otel.doctor.health")
        run_checks = getattr(health, "run_checks", None)
        if run_checks is not None:
            sections["health"] = [asdict(r) if hasattr(r, "__dataclass_fields__") else r for r in run_checks()]
    except ModuleNotFoundError:
        pass
    except Exception as exc:
        sections["health_error"] = f"{type(exc).__name__}: {exc}"
    return sections
