"""``crossbridge-otel doctor``: what the distribution would do in this environment, and whether it can.

It applies the distro's defaults, instruments every enabled CrossBridge area with non-exporting providers,
imports each target module (guarded; with ``CROSSBRIDGE_HOOKS_ENABLED=false`` unless the user set it, so
``core.orchestration`` does not connect to a database at import), and reports:

- the effective configuration (settings with their source, exporters, endpoint) and settings warnings;
- whether the configured OTLP endpoint answers;
- every target's status (patched, waiting, module missing, attribute missing, failed with reason, disabled);
- the audit table and health checks, when those parts are installed.
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
from typing import Any

from crossbridge_otel import settings as settings_mod
from crossbridge_otel.distro import DEFAULTS
from crossbridge_otel.export.pipeline import exporter_names, otlp_protocol
from crossbridge_otel.patching import status
from crossbridge_otel.patching.status import State
from crossbridge_otel.redaction import redact

__all__ = ["collect", "render"]

_OUR_PREFIX = "crossbridge_"


def _effective_environ() -> dict[str, str]:
    env = dict(os.environ)
    for name, value in DEFAULTS.items():
        env.setdefault(name, value)
    if "service.name=" not in env.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        env.setdefault("OTEL_SERVICE_NAME", "crossbridge")
    return env


def _endpoint(env: Mapping[str, str]) -> tuple[str, str]:
    protocol = otlp_protocol("traces", env)
    specific = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if specific:
        return protocol, specific
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if protocol == "grpc":
        return protocol, base or "http://localhost:4317"
    return protocol, (base.rstrip("/") if base else "http://localhost:4318") + "/v1/traces"


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
            return False, f"{host}:{port}: {exc}"
    request = urllib.request.Request(
        url, data=b"", method="POST", headers={"Content-Type": "application/x-protobuf"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return True, f"HTTP {response.status} from {redact(url)}"
    except urllib.error.HTTPError as exc:
        return exc.code < 500, f"HTTP {exc.code} from {redact(url)}"
    except (OSError, ValueError) as exc:
        return False, f"{redact(url)}: {getattr(exc, 'reason', exc)}"


def _instrumentor_entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    return [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name.startswith(_OUR_PREFIX)]


def _instrument_all(env: Mapping[str, str], loaded: dict[str, str]) -> list[Any]:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    disabled = {n.strip() for n in env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",") if n.strip()}
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
        if ep.name in disabled or "*" in disabled:
            loaded[ep.name] = "disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
            for t in targets:
                status.record(getattr(cls, "area", ep.name), t.module, t.qualname, t.span, State.DISABLED,
                              "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS")
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
    except (ImportError, ValueError, SyntaxError):
        return False
    except Exception:
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


def collect(import_targets: bool = True) -> dict[str, Any]:
    """Gather the whole report as plain data (the ``--json`` output)."""
    env = _effective_environ()
    loaded_settings = settings_mod.load(env, warn=False)
    warnings = list(loaded_settings.warnings)
    hooks_value = os.environ.get("CROSSBRIDGE_HOOKS_ENABLED")
    if (hooks_value or "").strip().lower() != "false":
        warnings.append(
            "CROSSBRIDGE_HOOKS_ENABLED is not set to false: importing core.orchestration makes CrossBridge "
            "connect to its hard-coded database at import time, with no timeout (set "
            "CROSSBRIDGE_HOOKS_ENABLED=false, or CROSSBRIDGE_DB_URL to a reachable database)"
        )
    if hooks_value is None:
        os.environ["CROSSBRIDGE_HOOKS_ENABLED"] = "false"  # for doctor's own imports only
    loaded: dict[str, str] = {}
    instances = _instrument_all(env, loaded)
    modules = sorted({t.module for inst in instances for t in getattr(inst, "targets", ())})
    imports = _import_targets(modules) if import_targets else {}
    targets = []
    for entry in status.snapshot():
        row = asdict(entry)
        row["state"] = entry.state.value
        if entry.state == State.WAITING and not _module_exists(entry.module):
            row["state"] = State.MODULE_MISSING.value
            row["detail"] = imports.get(entry.module, "") or "not found on sys.path"
        targets.append(row)
    sections = _optional_sections()  # the audit reads the live instrumentation state: before uninstrumenting
    for inst in instances:
        try:
            inst.uninstrument()
        except Exception as exc:
            warnings.append(f"uninstrumenting {type(inst).__name__} failed: {exc}")
    protocol, url = _endpoint(env)
    reachable, probe = probe_endpoint(protocol, url)
    report: dict[str, Any] = {
        "version": _version(),
        "python": sys.version.split()[0],
        "settings": {
            s.env: {"value": loaded_settings.values[s.key], "source": loaded_settings.sources[s.key]}
            for s in settings_mod.SETTINGS
        },
        "exporters": {sig: exporter_names(sig, env) for sig in ("traces", "logs", "metrics")},
        "endpoint": {"protocol": protocol, "url": redact(url), "answers": reachable, "detail": probe},
        "service_name": env.get("OTEL_SERVICE_NAME", ""),
        "instrumentors": loaded,
        "warnings": warnings,
        "targets": targets,
        "imports": imports,
    }
    report.update(sections)
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
        sections["audit_text"] = audit.render_audit(rows)
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


def render(report: Mapping[str, Any]) -> str:
    """The human-readable report."""
    lines = [f"crossbridge-otel doctor {report['version']} (Python {report['python']})", ""]
    endpoint = report["endpoint"]
    answer = "answers" if endpoint["answers"] else "DOES NOT ANSWER"
    lines += [
        "Export",
        f"  service.name   {report['service_name']}",
        *(f"  {sig:<14} {', '.join(names) or 'none'}" for sig, names in report["exporters"].items()),
        f"  endpoint       {endpoint['url']} ({endpoint['protocol']}): {answer} - {endpoint['detail']}",
        "",
        "Settings (non-default values)",
    ]
    changed = [(k, v) for k, v in report["settings"].items() if v["source"] != "default"]
    lines += [f"  {k} = {v['value']!r} ({v['source']})" for k, v in changed] or ["  all defaults"]
    lines += ["", "Instrumentors"]
    lines += [f"  {name:<28} {state}" for name, state in sorted(report["instrumentors"].items())]
    if report["warnings"]:
        lines += ["", "Warnings"] + [f"  ! {w}" for w in report["warnings"]]
    rows = report["targets"]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    lines += ["", f"Targets ({len(rows)}: {summary})"]
    width = max((len(f"{r['module']}.{r['qualname']}") for r in rows), default=10)
    for row in rows:
        name = f"{row['module']}.{row['qualname']}"
        detail = f"  ({row['detail']})" if row["detail"] and row["state"] != "patched" else ""
        lines.append(f"  {row['area']:<13} {name:<{width}}  {row['span']:<34} {row['state']}{detail}")
    if "health" in report:
        lines += ["", "Health checks"]
        for check in report["health"]:
            state = "healthy" if check["healthy"] else "UNHEALTHY"
            detail = " ".join(str(check["detail"]).split())
            lines.append(f"  {check['name']:<13} {state:<9} {check['duration_s'] * 1000:7.1f} ms  {detail}")
        if not report["health"]:
            lines.append(
                "  none configured (set CROSSBRIDGE_OTEL_HEALTH_POSTGRES, CROSSBRIDGE_OTEL_HEALTH_INFLUXDB or "
                "CROSSBRIDGE_OTEL_HEALTH_COVERAGE_DB)"
            )
    if report.get("audit_text"):
        lines += ["", "Audit", report["audit_text"]]
    for key in ("audit_error", "health_error"):
        if report.get(key):
            lines += ["", f"{key}: {report[key]}"]
    return "\n".join(lines) + "\n"
