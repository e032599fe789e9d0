"""The distribution's own settings: one declarative table, loaded in one place.

Every ``CROSSBRIDGE_OTEL_*`` variable is a row of :data:`SETTINGS` (name, type, default, documentation).
Precedence, highest first: an explicit argument to :func:`load`, then the environment, then the default.

A bad value (wrong type, unknown choice) or an unknown ``CROSSBRIDGE_OTEL_*`` name gives one warning on the
``crossbridge_otel`` logger naming the variable and what was expected ("did you mean ..."), the default is
used, and the application runs. The README's settings table is rendered from :data:`SETTINGS` by
:func:`render_markdown`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["PREFIX", "SETTINGS", "Setting", "Settings", "load", "render_markdown"]

PREFIX = "CROSSBRIDGE_OTEL_"

_log = logging.getLogger("crossbridge_otel")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected one of true/false, 1/0, yes/no, on/off")


def _parse_positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):  # "inf" would unbound the exit deadline
        raise ValueError("expected a finite number greater than 0")
    return value


def _parse_positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("expected a whole number greater than 0")
    return value


def _parse_str(text: str) -> str:
    return text.strip()


_PARSERS: dict[str, Callable[[str], Any]] = {
    "bool": _parse_bool,
    "float": _parse_positive_float,
    "int": _parse_positive_int,
    "str": _parse_str,
}


class Setting:
    """One row of the settings table.

    A plain class, not a dataclass: this module is imported by every ``opentelemetry-instrument`` start-up, and
    generating a dataclass's methods costs about a millisecond per class (start-up budget, README Performance).
    """

    __slots__ = ("choices", "default", "doc", "key", "type")

    def __init__(self, key: str, type: str, default: Any, doc: str, choices: tuple[str, ...] = ()) -> None:
        self.key = key
        self.type = type
        self.default = default
        self.doc = doc
        self.choices = choices

    def __repr__(self) -> str:
        return f"Setting({self.key!r}, {self.type!r}, {self.default!r})"

    @property
    def env(self) -> str:
        return PREFIX + self.key.upper()

    def parse(self, text: str) -> Any:
        value = _PARSERS[self.type](text)
        if self.choices and value not in self.choices:
            raise ValueError("expected one of " + ", ".join(self.choices))
        return value


SETTINGS: tuple[Setting, ...] = (
    Setting("enabled", "bool", True,
            "Master switch read at start-up: `false` loads nothing (no patches, no providers)."),
    Setting("strict", "bool", False,
            "Re-raise failures inside the distribution instead of containing them (for its own tests)."),
    Setting("export_timeout", "float", 1.5,
            "Seconds the process may spend at exit flushing telemetry; what is still queued is dropped "
            "and counted."),
    Setting("max_queue_size", "int", 4096,
            "Spans (and, separately, log records) held for export; beyond it new ones are dropped and counted."),
    Setting("local_output", "str", "",
            "Also write telemetry to this file, one span, log record or metric point per line (OTLP JSON, "
            "no collector needed); appended to, each run told apart by `crossbridge.run.id`. Read it with "
            "`crossbridge-otel show` or `crossbridge-otel report`."),
    Setting("run_id", "str", "",
            "The `crossbridge.run.id` of the local output file's lines. Empty: set at start-up to a new id that "
            "the processes CrossBridge starts inherit; set it yourself (e.g. to the CI job id) to make several "
            "commands one run."),
    Setting("summary", "bool", False,
            "Print the process's traces to stderr at exit (the tree, or per span name counts and p50/p95 when "
            "there are many) and the drop counts."),
    Setting("logs", "bool", True, "Bridge CrossBridge's log records into OpenTelemetry log records."),
    Setting("per_event_spans", "bool", False,
            "A span per high-frequency event (MetricsCollector.collect, WebDriver commands) instead of counts "
            "on the enclosing span."),
    Setting("capture_sql_parameters", "bool", False,
            "Let the psycopg2 instrumentation capture SQL parameter values, redacted (off: statements only)."),
    Setting("subprocess_spans", "bool", True,
            "A child span and TRACEPARENT for commands CrossBridge runs while one of its operations is traced."),
    Setting("retry", "bool", True,
            "The retry layer on idempotent operations (profiling storage initialize, health probes, coverage "
            "repository reads, Bitbucket reads)."),
    Setting("retry_writes", "bool", False,
            "Also retry non-idempotent writes (PostgresStorageBackend.write_events, PR creation); each batch "
            "is one transaction retried only when the failure came before commit."),
    Setting("retry_policies", "str", "",
            "Override named retry policies: `name=attempts:base:cap[:exp_base]`, comma-separated, "
            "e.g. `quick=3:0.05:0.5,default=4:0.2:2`."),
    Setting("retry_budget", "float", 60.0,
            "Upper bound in seconds, on a monotonic clock, for all attempts of one retried operation."),
    Setting("health_timeout", "float", 2.0, "Seconds one health probe may take."),
    Setting("health_postgres", "str", "",
            "PostgreSQL to health-check when no CrossBridge ProfileConfig is given: a libpq DSN or "
            "`postgresql://` URL."),
    Setting("health_influxdb", "str", "",
            "InfluxDB base URL to health-check (`GET <url>/health`) when no ProfileConfig is given."),
    Setting("health_coverage_db", "str", "",
            "Path of CrossBridge's coverage SQLite database to health-check (opened read-only)."),
    Setting("rate_limits", "str", "",
            "Token buckets for high-volume operations: `key=capacity/seconds`, comma-separated, "
            "e.g. `translation=10/60,execution=4/1`."),
)

_BY_ENV = {setting.env: setting for setting in SETTINGS}


class Settings:
    """The effective values, plus where each came from and the warnings loading produced (plain class: see Setting)."""

    __slots__ = ("sources", "values", "warnings")

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str], warnings: tuple[str, ...] = ()) -> None:
        self.values = values
        self.sources = sources
        self.warnings = warnings

    def __repr__(self) -> str:
        return f"Settings({dict(self.values)!r})"

    def __getattr__(self, key: str) -> Any:
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(key) from None


def load(environ: Mapping[str, str] | None = None, warn: bool = True, **explicit: Any) -> Settings:
    """Read the table: explicit keyword arguments, then ``environ`` (default ``os.environ``), then defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    problems: list[str] = []
    for setting in SETTINGS:
        if setting.key in explicit:
            values[setting.key], sources[setting.key] = explicit[setting.key], "argument"
            continue
        raw = env.get(setting.env)
        if raw is None or raw.strip() == "":
            values[setting.key], sources[setting.key] = setting.default, "default"
            continue
        try:
            values[setting.key], sources[setting.key] = setting.parse(raw), "environment"
        except ValueError as exc:
            values[setting.key], sources[setting.key] = setting.default, "default (bad value)"
            problems.append(
                f"{setting.env}={raw!r} is not valid ({exc}); using the default {setting.default!r}"
            )
    for name in env:
        if name.startswith(PREFIX) and name not in _BY_ENV:
            # Compare without the shared prefix, which would make every unknown name look "close".
            keys = {env[len(PREFIX):]: env for env in _BY_ENV}
            import difflib  # only on this warning path: start-up budget

            hint = difflib.get_close_matches(name[len(PREFIX):], list(keys), n=1)
            suggestion = f"; did you mean {keys[hint[0]]}?" if hint else ""
            problems.append(f"{name} is not a crossbridge-otel setting{suggestion} It is ignored.")
    if warn:
        for problem in problems:
            _log.warning("crossbridge-otel settings: %s", problem)
    return Settings(values, sources, tuple(problems))


def render_markdown() -> str:
    """The settings table as Markdown, for the README."""
    rows = ["| variable | type | default | what it does |", "|---|---|---|---|"]
    for setting in SETTINGS:
        default = "(empty)" if setting.default == "" else str(setting.default).lower()
        rows.append(f"| `{setting.env}` | {setting.type} | `{default}` | {setting.doc} |")
    return "\n".join(rows)
