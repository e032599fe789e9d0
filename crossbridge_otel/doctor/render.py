"""The doctor's text report: the verdict first, then what is uniform grouped, every line within the width.

Targets are one line per area (how many patched) plus one group per state and reason for the rest (``-v``
lists every target); long values are wrapped (warnings) or cut with an ellipsis (tables).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from crossbridge_otel.doctor.verdict import describe_destinations
from crossbridge_otel.otel_env import EXPORTERS

__all__ = ["render"]

_MODULES_SHOWN = 4


def _clip(text: str, width: int) -> str:
    """One line (line breaks and tabs made spaces), cut to ``width``."""
    flat = str(text).replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return flat if len(flat) <= width else flat[: max(1, width - 1)] + "…"


def _wrap(text: str, width: int, first: str = "  ! ", rest: str = "    ") -> list[str]:
    return textwrap.wrap(" ".join(str(text).split()), width=max(20, width), initial_indent=first,
                         subsequent_indent=rest, break_on_hyphens=False) or [first.rstrip()]


def _fit(header: Sequence[str], rows: Sequence[Sequence[str]], width: int, keep: Sequence[int] = ()) -> list[str]:
    """A plain table within ``width``: the widest columns give way first, those in ``keep`` last."""
    widths = [max(len(header[i]), *(len(str(r[i])) for r in rows)) if rows else len(header[i])
              for i in range(len(header))]
    room = width - 2 - 2 * (len(header) - 1)
    for protected in (False, True):
        while sum(widths) > room:
            candidates = [i for i in range(len(widths)) if widths[i] > 8 and (protected or i not in keep)]
            if not candidates:
                break
            widest = max(candidates, key=lambda i: widths[i])
            widths[widest] -= 1

    def line(cells: Sequence[str]) -> str:
        return ("  " + "  ".join(_clip(str(c), w).ljust(w) for c, w in zip(cells, widths, strict=True))).rstrip()

    return [line(header), "  " + "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def _export(report: Mapping[str, Any], width: int) -> list[str]:
    lines = ["Export", f"  service.name  {report['service_name']}"]
    for signal, names in report["exporters"].items():
        shown = [n if n in EXPORTERS else f"{n} (unknown: ignored)" for n in names]
        lines.append(_clip(f"  {signal:<12}  {', '.join(shown) or 'none (OTEL_' + signal.upper() + '_EXPORTER)'}",
                           width))
    for d in report["destinations"]:
        lines += _wrap(describe_destinations([d]), width, "  -> ", "     ")
    if not report["destinations"]:
        lines.append("  -> nothing is exported" + (" (summary at exit only)" if report["summary_at_exit"] else ""))
    return lines


def _instrumentors(report: Mapping[str, Any], width: int) -> list[str]:
    states = report["instrumentors"]
    loaded = sorted(name.removeprefix("crossbridge_") for name, state in states.items() if state == "loaded")
    lines = _wrap(f"Instrumentors: {len(loaded)} of {len(states)} loaded ({', '.join(loaded) or 'none'})",
                  width, "", "  ")
    for name, state in sorted(states.items()):
        if state != "loaded":
            lines += _wrap(f"{name}: {state}", width, "  ", "    ")
    return lines


def _group_label(state: str, detail: str) -> str:
    if state == "failed" and detail.startswith("the module failed to import"):
        return f"failed in CrossBridge itself ({detail})"
    return f"{state} ({detail})" if detail else state


def _targets(report: Mapping[str, Any], width: int, verbose: bool, crossbridge_missing: bool) -> list[str]:
    rows = report["targets"]
    patched = sum(1 for r in rows if r["state"] == "patched")
    lines = [f"Targets: {patched} of {len(rows)} patched"]
    if verbose:
        body = [[r["area"], f"{r['module']}.{r['qualname']}", r["span"],
                 r["state"] + (f": {r['detail']}" if r["detail"] and r["state"] != "patched" else "")]
                for r in rows]
        return lines + _fit(["area", "target", "span", "state"], body, width, keep=(1,))
    per_area: dict[str, dict[str, int]] = {}
    for r in rows:
        per_area.setdefault(r["area"], {}).setdefault(r["state"], 0)
        per_area[r["area"]][r["state"]] += 1
    for area, counts in sorted(per_area.items()):
        text = ", ".join(f"{n} {state}" for state, n in sorted(counts.items(), key=lambda kv: kv[0] != "patched"))
        lines.append(_clip(f"  {area:<14}{text}", width))
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        if r["state"] == "patched":
            continue
        if crossbridge_missing and r.get("crossbridge") and r["state"] == "module missing":
            key = ("module missing", "CrossBridge is not importable here")
        else:
            key = (r["state"], str(r["detail"]))
        groups.setdefault(key, []).append(r)
    for (state, detail), members in groups.items():
        lines += _wrap(f"{_group_label(state, detail)}: {len(members)} target(s)", width, "  ", "    ")
        modules: dict[str, list[str]] = {}
        for r in members:
            modules.setdefault(r["module"], []).append(r["qualname"])
        for module, names in list(modules.items())[:_MODULES_SHOWN]:
            lines.append(_clip(f"    {module}: {', '.join(names)}", width))
        if len(modules) > _MODULES_SHOWN:
            lines.append(f"    ... and {len(modules) - _MODULES_SHOWN} more modules")
    if groups:
        lines.append("  (crossbridge-otel doctor -v lists every target)")
    return lines


def _health(report: Mapping[str, Any], width: int) -> list[str]:
    lines = ["Health checks"]
    for check in report["health"]:
        state = "healthy" if check["healthy"] else "UNHEALTHY"
        lines.append(_clip(f"  {check['name']:<13} {state:<9} {check['duration_s'] * 1000:7.1f} ms  "
                           f"{check['detail']}", width))
    if not report["health"]:
        lines += _wrap("none configured (set CROSSBRIDGE_OTEL_HEALTH_POSTGRES, CROSSBRIDGE_OTEL_HEALTH_INFLUXDB or "
                       "CROSSBRIDGE_OTEL_HEALTH_COVERAGE_DB)", width, "  ", "  ")
    return lines


def _audit(report: Mapping[str, Any], width: int, verbose: bool) -> list[str]:
    rows = report["audit"]
    traced = sum(1 for r in rows if r["traced_ok"])
    bridged = sum(1 for r in rows if r["logs_ok"])
    lines = [f"Audit: {traced}/{len(rows)} modules fully traced, {bridged} with logs bridged"]
    if verbose:
        body = [[r["area"], r["module"], r["traced"], r["logs"], r["retry"], r["health"]] for r in rows]
        return lines + _fit(["area", "module", "traced", "logs", "retry", "health"], body, width, keep=(0, 1))
    gaps = [r for r in rows if not (r["traced_ok"] and r["logs_ok"])]
    for r in gaps:
        what = [f"traced: {r['traced']}"] if not r["traced_ok"] else []
        what += [f"logs: {r['logs']}"] if not r["logs_ok"] else []
        lines += _wrap(f"{r['module']} ({r['area']}): {'; '.join(what)}", width, "  ", "    ")
    if gaps:
        lines.append("  (crossbridge-otel doctor -v shows the whole table: traced, logs, retry, health)")
    return lines


def render(report: Mapping[str, Any], width: int = 100, verbose: bool = False) -> str:
    """The human-readable report; the first line is the verdict."""
    width = max(40, width)
    verdict = report["verdict"]
    lines = _wrap(verdict["line"], width, "", "  ")
    for reason in verdict["reasons"]:
        lines += _wrap(reason, width)
    lines += ["", f"crossbridge-otel doctor {report['version']} (Python {report['python']})", ""]
    if not report["enabled"]:
        lines += _instrumentors(report, width)
        return "\n".join(lines) + "\n"
    lines += _export(report, width)
    changed = [(k, v) for k, v in report["settings"].items() if v["source"] != "default"]
    lines += ["", "Settings (non-default values)"]
    lines += [_clip(f"  {k} = {v['value']!r} ({v['source']})", width) for k, v in changed] or ["  all defaults"]
    if report["warnings"]:
        lines += ["", f"Warnings ({len(report['warnings'])})"]
        for warning in report["warnings"]:
            lines += _wrap(warning, width)
    if report["notes"]:
        lines += ["", "Notes"]
        for note in report["notes"]:
            lines += _wrap(note, width, "  - ", "    ")
    lines += ["", *_instrumentors(report, width), ""]
    missing = any(r.startswith("CrossBridge is not importable") for r in verdict["reasons"])
    lines += _targets(report, width, verbose, missing)
    if "health" in report:
        lines += ["", *_health(report, width)]
    if report.get("audit") and missing:
        lines += ["", "Audit: skipped (CrossBridge is not importable here)"]
    elif report.get("audit"):
        lines += ["", *_audit(report, width, verbose)]
    for key in ("audit_error", "health_error"):
        if report.get(key):
            lines += ["", *_wrap(f"{key}: {report[key]}", width, "", "  ")]
    return "\n".join(_clip(line, width) for line in lines) + "\n"
