"""The standard ``OTEL_*`` variables the distribution relies on, checked like our own settings.

A typo in one of them is otherwise silent (an unknown name in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` disables
nothing) or surfaces far from its cause. :func:`check` returns one message per problem, each naming the variable,
what was expected, a "did you mean" when something is close, and what happens instead. The distro logs them at
start-up (``crossbridge-otel settings: ...`` on the ``crossbridge_otel`` logger) and ``crossbridge-otel doctor``
lists them. Nothing is changed: the value stays as the user set it and the usual fallback applies.

Checked: the exporter names (``OTEL_{TRACES,LOGS,METRICS}_EXPORTER``), the OTLP protocols and endpoints, the
sampler and its ratio, the names in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` (against the installed
``opentelemetry_instrumentor`` entry points), ``OTEL_RESOURCE_ATTRIBUTES`` pairs, and misspelt names of these
variables (``OTEL_TRACE_EXPORTER``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

__all__ = ["EXPORTERS", "PROTOCOLS", "SAMPLERS", "check", "instrumentation_names", "suggest"]

SIGNALS = ("traces", "logs", "metrics")
EXPORTERS = ("otlp", "console", "none")  # what crossbridge_otel.export.pipeline builds
PROTOCOLS = ("http/protobuf", "grpc")  # what the Python OTLP exporters speak
# What the SDK's TracerProvider understands from the environment (opentelemetry.sdk.trace.sampling).
SAMPLERS = (
    "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
    "always_on", "always_off", "traceidratio",
)
_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")

# The standard names we read (or the SDK reads for us); near misses of these are reported.
RELIED_ON = (
    *(f"OTEL_{s.upper()}_EXPORTER" for s in SIGNALS),
    "OTEL_EXPORTER_OTLP_ENDPOINT", *(f"OTEL_EXPORTER_OTLP_{s.upper()}_ENDPOINT" for s in SIGNALS),
    "OTEL_EXPORTER_OTLP_PROTOCOL", *(f"OTEL_EXPORTER_OTLP_{s.upper()}_PROTOCOL" for s in SIGNALS),
    "OTEL_EXPORTER_OTLP_HEADERS", *(f"OTEL_EXPORTER_OTLP_{s.upper()}_HEADERS" for s in SIGNALS),
    "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "OTEL_SDK_DISABLED", "OTEL_PROPAGATORS", "OTEL_LOG_LEVEL",
)
LOG_LEVELS = ("debug", "info", "warning", "error")  # OTEL_LOG_LEVEL: our own voice's level (crossbridge_otel._voice)
_RELIED_ON = frozenset(RELIED_ON)


def suggest(value: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The closest of ``choices`` to ``value`` (case-insensitive), or None."""
    by_lower = {c.lower(): c for c in choices}
    wanted = value.strip().lower()
    prefixed = [c for low, c in by_lower.items() if wanted and low.startswith(wanted)]
    if len(prefixed) == 1:  # "http" for "http/protobuf"
        return prefixed[0]
    if not any(_may_be_close(wanted, low, cutoff) for low in by_lower):
        return None  # the usual case at start-up (every OTEL_* name is checked): difflib is not even imported
    import difflib  # only on a possible warning path: start-up budget

    close = difflib.get_close_matches(wanted, list(by_lower), n=1, cutoff=cutoff)
    return by_lower[close[0]] if close else None


def _may_be_close(word: str, possibility: str, cutoff: float) -> bool:
    """difflib's first filter in ``get_close_matches`` (``real_quick_ratio``: the ratio's bound from the lengths)."""
    total = len(word) + len(possibility)
    return 2.0 * min(len(word), len(possibility)) / total >= cutoff if total else True


def _did_you_mean(value: str, choices: Iterable[str]) -> str:
    hint = suggest(value, choices)
    return f"; did you mean {hint!r}?" if hint else "."


def instrumentation_names() -> set[str]:
    """The names ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` can hold: the installed instrumentor entry points and
    the CrossBridge areas behind ours."""
    from importlib.metadata import entry_points

    from crossbridge_otel.instrumentors.areas import AREAS

    return {ep.name for ep in entry_points(group="opentelemetry_instrumentor")} | set(AREAS)


def _exporters(env: Mapping[str, str]) -> list[str]:
    problems = []
    for signal in SIGNALS:
        name = f"OTEL_{signal.upper()}_EXPORTER"
        for value in (v.strip() for v in env.get(name, "").split(",")):
            if value and value not in EXPORTERS:
                problems.append(
                    f"{name}: unknown exporter {value!r} (crossbridge-otel builds {', '.join(EXPORTERS)})"
                    f"{_did_you_mean(value, EXPORTERS)} It is ignored."
                )
    return problems


def _otlp_settings(env: Mapping[str, str], setting: str) -> list[tuple[str, str]]:
    """``OTEL_EXPORTER_OTLP_<SETTING>`` and its per-signal forms that are set: (name, stripped value)."""
    names = (f"OTEL_EXPORTER_OTLP_{setting}", *(f"OTEL_EXPORTER_OTLP_{s.upper()}_{setting}" for s in SIGNALS))
    return [(name, env[name].strip()) for name in names if env.get(name, "").strip()]


def _protocols(env: Mapping[str, str]) -> list[str]:
    problems = []
    for name, value in _otlp_settings(env, "PROTOCOL"):
        if value in PROTOCOLS:
            continue
        if value == "http/json":
            why = "is not spoken by the Python OTLP exporters;"
        else:
            why = f"is not {' or '.join(PROTOCOLS)}{_did_you_mean(value, PROTOCOLS)}"
        problems.append(f"{name}={value!r} {why} http/protobuf is used.")
    return problems


def _endpoints(env: Mapping[str, str]) -> list[str]:
    problems = []
    for name, value in _otlp_settings(env, "ENDPOINT"):
        if not value.lower().startswith(("http://", "https://")):
            problems.append(
                f"{name}={value!r} has no http:// or https:// scheme; the OTLP exporters need one "
                f"(e.g. http://{value})."
            )
    return problems


def _sampler(env: Mapping[str, str]) -> list[str]:
    problems = []
    sampler = env.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if sampler and sampler not in SAMPLERS:
        problems.append(
            f"OTEL_TRACES_SAMPLER={sampler!r} is not a sampler the SDK knows ({', '.join(SAMPLERS)})"
            f"{_did_you_mean(sampler, SAMPLERS)} parentbased_always_on is used."
        )
    raw = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if sampler in _RATIO_SAMPLERS and raw:
        try:
            ratio = float(raw)
        except ValueError:
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            problems.append(f"OTEL_TRACES_SAMPLER_ARG={raw!r} is not a ratio between 0 and 1 for {sampler}.")
    return problems


def _log_level(env: Mapping[str, str]) -> list[str]:
    value = env.get("OTEL_LOG_LEVEL", "").strip().lower()
    if not value or value in (*LOG_LEVELS, "warn"):
        return []
    return [f"OTEL_LOG_LEVEL={value!r} is not {', '.join(LOG_LEVELS)}{_did_you_mean(value, LOG_LEVELS)} "
            "warning is used."]


def _disabled(env: Mapping[str, str], known: Callable[[], set[str]]) -> list[str]:
    names = [n.strip() for n in env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",") if n.strip()]
    names = [n for n in names if n != "*"]
    if not names:
        return []
    installed = known()  # scans the installed distributions: only when the variable names something
    return [
        f"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS: no installed instrumentation is named {name!r}"
        f"{_did_you_mean(name, installed)} Nothing is disabled by that name."
        for name in names
        if name not in installed
    ]


def _resource_attributes(env: Mapping[str, str]) -> list[str]:
    raw = env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    bad = [pair.strip() for pair in raw.split(",") if pair.strip() and "=" not in pair]
    if not bad:
        return []
    return [f"OTEL_RESOURCE_ATTRIBUTES: {', '.join(map(repr, bad))} is not key=value; the SDK skips it."]


def _standard_names() -> set[str]:
    """Every variable name the API, SDK and instrumentation packages define (read only on a near miss)."""
    import importlib

    names: set[str] = set()
    for module in ("opentelemetry.environment_variables", "opentelemetry.sdk.environment_variables",
                   "opentelemetry.instrumentation.environment_variables"):
        try:
            values = vars(importlib.import_module(module)).values()
        except ImportError:
            continue
        names |= {v for v in values if isinstance(v, str) and v.startswith("OTEL_")}
    return names


def _names(env: Mapping[str, str]) -> list[str]:
    problems = []
    standard: set[str] | None = None
    for name in env:
        if not name.startswith("OTEL_") or name in _RELIED_ON:
            continue
        hint = suggest(name, RELIED_ON, cutoff=0.9)
        if hint is None:
            continue
        standard = _standard_names() if standard is None else standard
        if name in standard:  # a real variable that merely looks like one of ours (OTEL_EXPORTER_OTLP_LOGS_TIMEOUT)
            continue
        if hint.lower() != name.lower():
            problems.append(f"{name} is not a standard variable; did you mean {hint}? It is ignored.")
        else:
            problems.append(f"{name}: variable names are case-sensitive; did you mean {hint}? It is ignored.")
    return problems


def check(environ: Mapping[str, str], known_instrumentations: Callable[[], set[str]] | None = None) -> list[str]:
    """One message per problem in the standard variables of ``environ`` (empty when all is well)."""
    return [
        *_names(environ),
        *_exporters(environ),
        *_protocols(environ),
        *_endpoints(environ),
        *_sampler(environ),
        *_log_level(environ),
        *_disabled(environ, known_instrumentations or instrumentation_names),
        *_resource_attributes(environ),
    ]
