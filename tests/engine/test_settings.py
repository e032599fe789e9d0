"""Settings: one table, a stated precedence, one clear warning per bad or unknown variable, ours or standard."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crossbridge_otel import otel_env, settings
from crossbridge_otel.settings import SETTINGS, Setting, load, render_markdown


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "crossbridge_otel" and r.levelno == logging.WARNING]


def test_defaults_when_nothing_is_set():
    """With an empty environment every setting has its table default and source 'default'."""
    result = load({}, warn=False)
    assert all(result.values[s.key] == s.default for s in SETTINGS)
    assert set(result.sources.values()) == {"default"}
    assert result.warnings == ()


def test_precedence_argument_then_environment_then_default():
    """An explicit argument beats the environment, which beats the default."""
    env = {"CROSSBRIDGE_OTEL_EXPORT_TIMEOUT": "0.5", "CROSSBRIDGE_OTEL_SUMMARY": "true"}
    result = load(env, warn=False, export_timeout=0.25)
    assert (result.export_timeout, result.sources["export_timeout"]) == (0.25, "argument")
    assert (result.summary, result.sources["summary"]) == (True, "environment")
    assert (result.max_queue_size, result.sources["max_queue_size"]) == (4096, "default")


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("CROSSBRIDGE_OTEL_SUMMARY", "maybe", "true/false"),
        ("CROSSBRIDGE_OTEL_EXPORT_TIMEOUT", "soon", "could not convert"),
        ("CROSSBRIDGE_OTEL_EXPORT_TIMEOUT", "-1", "greater than 0"),
        ("CROSSBRIDGE_OTEL_EXPORT_TIMEOUT", "inf", "finite"),
        ("CROSSBRIDGE_OTEL_MAX_QUEUE_SIZE", "1.5", "invalid literal"),
    ],
)
def test_bad_value_warns_once_naming_the_variable_and_uses_the_default(caplog, name, raw, expected):
    """A bad value gives exactly one warning naming the variable and what was expected; the default is used."""
    setting = next(s for s in SETTINGS if s.env == name)
    with caplog.at_level(logging.WARNING, logger="crossbridge_otel"):
        result = load({name: raw})
    messages = _warnings(caplog)
    assert len(messages) == 1
    assert name in messages[0] and expected in messages[0] and repr(raw) in messages[0]
    assert result.values[setting.key] == setting.default
    assert result.sources[setting.key] == "default (bad value)"


def test_bad_choice_warns_with_the_allowed_choices(monkeypatch, caplog):
    """A value outside a setting's choices warns with the list of allowed values and uses the default."""
    row = Setting("mode", "str", "fast", "A test-only choice setting.", choices=("fast", "safe"))
    monkeypatch.setattr(settings, "SETTINGS", (*SETTINGS, row))
    monkeypatch.setitem(settings._BY_ENV, row.env, row)
    with caplog.at_level(logging.WARNING, logger="crossbridge_otel"):
        result = load({"CROSSBRIDGE_OTEL_MODE": "quick"})
    (message,) = _warnings(caplog)
    assert "CROSSBRIDGE_OTEL_MODE" in message and "fast, safe" in message
    assert result.mode == "fast"
    assert load({"CROSSBRIDGE_OTEL_MODE": "safe"}, warn=False).mode == "safe"


def test_unknown_name_near_miss_suggests_the_real_one(caplog):
    """A misspelt CROSSBRIDGE_OTEL_* name warns once with 'did you mean' and the real name."""
    with caplog.at_level(logging.WARNING, logger="crossbridge_otel"):
        load({"CROSSBRIDGE_OTEL_EXPORT_TIMOUT": "1"})
    (message,) = _warnings(caplog)
    assert "CROSSBRIDGE_OTEL_EXPORT_TIMOUT" in message
    assert "did you mean CROSSBRIDGE_OTEL_EXPORT_TIMEOUT?" in message


def test_unknown_name_far_from_any_setting_has_no_suggestion(caplog):
    """An unknown name that resembles nothing warns without a suggestion, and the rest still loads."""
    with caplog.at_level(logging.WARNING, logger="crossbridge_otel"):
        result = load({"CROSSBRIDGE_OTEL_ZZZ": "1", "CROSSBRIDGE_OTEL_SUMMARY": "yes"})
    (message,) = _warnings(caplog)
    assert "CROSSBRIDGE_OTEL_ZZZ" in message and "did you mean" not in message
    assert result.summary is True


def test_other_prefixes_are_not_ours():
    """Variables outside the CROSSBRIDGE_OTEL_ prefix are never reported."""
    assert load({"OTEL_SERVICE_NAME": "x", "CROSSBRIDGE_HOOKS_ENABLED": "false"}, warn=False).warnings == ()


def test_bool_spellings():
    """Booleans accept true/false, 1/0, yes/no, on/off in any case and with spaces."""
    for raw, value in (("TRUE", True), (" on ", True), ("1", True), ("No", False), ("off", False), ("0", False)):
        assert load({"CROSSBRIDGE_OTEL_SUMMARY": raw}, warn=False).summary is value


def test_render_markdown_has_a_row_per_setting():
    """The README table has a header and exactly one row per setting, naming its variable and default."""
    lines = render_markdown().splitlines()
    assert lines[0].startswith("| variable |")
    rows = lines[2:]
    assert len(rows) == len(SETTINGS)
    for setting, row in zip(SETTINGS, rows):
        assert row.startswith(f"| `{setting.env}` | {setting.type} |")


# -- the standard OTEL_* variables we rely on (crossbridge_otel.otel_env) --------------------------------------

_INSTALLED = {"crossbridge_coverage", "crossbridge_profiling", "psycopg2", "threading"}


def _check(**env: str) -> list[str]:
    return otel_env.check(env, known_instrumentations=lambda: _INSTALLED)


def test_standard_variables_set_right_give_no_warning():
    """Known exporters, protocols, a ratio sampler with its ratio and installed names pass without a word."""
    assert _check(
        OTEL_TRACES_EXPORTER="otlp,console", OTEL_LOGS_EXPORTER="none", OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318", OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.25", OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="crossbridge_coverage, psycopg2",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=ci", OTEL_EXPORTER_OTLP_LOGS_TIMEOUT="5",
    ) == []


def test_unknown_exporter_name_suggests_the_real_one():
    """OTEL_TRACES_EXPORTER=consol is one warning naming the variable, the choices and 'console'."""
    (message,) = _check(OTEL_TRACES_EXPORTER="consol")
    assert message.startswith("OTEL_TRACES_EXPORTER: unknown exporter 'consol'")
    assert "did you mean 'console'?" in message and "otlp, console, none" in message


def test_unknown_disabled_instrumentation_suggests_the_installed_one():
    """A misspelt name in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS warns that it disables nothing, with a suggestion."""
    (message,) = _check(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="crossbridge_coverge,psycopg2")
    assert "'crossbridge_coverge'" in message and "did you mean 'crossbridge_coverage'?" in message
    assert "Nothing is disabled by that name" in message


def test_disabled_names_are_read_from_the_installed_entry_points():
    """Without an injected list, the real entry points are the reference: our areas are known, a typo is not."""
    assert otel_env.check({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "crossbridge_coverage,threading"}) == []
    assert otel_env.check({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "crossbridge_covrage"})


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http", "did you mean 'http/protobuf'?"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "GRPC", "did you mean 'grpc'?"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "not spoken by the Python OTLP exporters"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceid_ratio", "did you mean 'parentbased_traceidratio'?"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", "no http:// or https:// scheme"),
    ],
)
def test_protocol_sampler_and_endpoint_values_are_checked(name, value, expected):
    """A protocol, sampler or endpoint value the SDK would not take gives one warning with what to write."""
    (message,) = _check(**{name: value})
    assert name in message and expected in message


def test_sampler_ratio_out_of_range_is_reported():
    """A ratio sampler's argument outside 0..1 (the SDK raises building the provider) is reported."""
    (message,) = _check(OTEL_TRACES_SAMPLER="traceidratio", OTEL_TRACES_SAMPLER_ARG="2")
    assert "OTEL_TRACES_SAMPLER_ARG='2'" in message


def test_misspelt_standard_variable_name_suggests_the_real_one():
    """OTEL_TRACE_EXPORTER (no S) is reported with the name it was meant to be; a real near name is not."""
    (message,) = _check(OTEL_TRACE_EXPORTER="console")
    assert "did you mean OTEL_TRACES_EXPORTER?" in message
    assert _check(OTEL_EXPORTER_OTLP_METRICS_TIMEOUT="3") == []


def _difflib_suggestion(value: str, choices: tuple[str, ...], cutoff: float) -> str | None:
    """What suggest() answered before its length pre-check: difflib on every value (the reference)."""
    import difflib

    by_lower = {c.lower(): c for c in choices}
    wanted = value.strip().lower()
    prefixed = [c for low, c in by_lower.items() if wanted and low.startswith(wanted)]
    if len(prefixed) == 1:
        return prefixed[0]
    close = difflib.get_close_matches(wanted, list(by_lower), n=1, cutoff=cutoff)
    return by_lower[close[0]] if close else None


def test_suggest_answers_as_difflib_does():
    """The length pre-check changes no answer: near misses, far names, prefixes and lengths either side of the cut."""
    names = otel_env.RELIED_ON
    words = [
        *names, *(n[1:] for n in names), *(n.replace("_", "", 1) for n in names),
        # lengths either side of each cutoff's bound: a cut or an addition of 1 to 30 characters
        *(n[:-k] for n in names for k in range(1, 31)), *(n + "Z" * k for n in names for k in range(1, 31)),
        "OTEL_", "", "OTEL_TRACE_EXPORTER", "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS", "x",
        "consol", "http", "grpcc", "debugg",
    ]
    for cutoff in (0.6, 0.9):
        for word in words:
            assert otel_env.suggest(word, names, cutoff) == _difflib_suggestion(word, names, cutoff), (word, cutoff)
    for word in ("consol", "nonee", "xyz"):
        assert otel_env.suggest(word, otel_env.EXPORTERS) == _difflib_suggestion(word, otel_env.EXPORTERS, 0.6)


# -- at start-up, under opentelemetry-instrument ------------------------------------------------------------


_SPAN = (
    "from opentelemetry import trace\n"
    "with trace.get_tracer('tests').start_as_current_span('s'):\n"
    "    pass\n"
)


def _instrumented(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CROSSBRIDGE_OTEL_"))}
    base.update({"OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
                 "CROSSBRIDGE_OTEL_STRICT": "false", **env})
    return subprocess.run([str(Path(sys.executable).parent / "opentelemetry-instrument"), sys.executable, "-c", code],
                          env=base, capture_output=True, text=True, timeout=60, check=False)


def test_start_up_warns_about_a_misspelt_exporter_with_a_suggestion():
    """Running with OTEL_TRACES_EXPORTER=consol prints one did-you-mean warning and the program runs."""
    done = _instrumented(_SPAN + "print('ran')", OTEL_TRACES_EXPORTER="consol")
    assert done.returncode == 0 and done.stdout.strip() == "ran", done.stderr
    warned = [line for line in done.stderr.splitlines() if "did you mean 'console'?" in line]
    assert len(warned) == 1 and "OTEL_TRACES_EXPORTER" in warned[0], done.stderr


def test_start_up_misspelt_exporter_is_not_an_instrumentation_failure():
    """The misspelt exporter is a settings warning only, never a contained 'instrumentation failure'."""
    done = _instrumented(_SPAN, OTEL_TRACES_EXPORTER="consol")
    assert "instrumentation failure" not in done.stderr and "unknown exporter 'consol' ignored" not in done.stderr


def test_start_up_warns_about_an_unknown_disabled_instrumentation():
    """A misspelt name in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS is said at start-up, with the installed name."""
    done = _instrumented("pass", OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="crossbridge_coverge")
    assert done.returncode == 0, done.stderr
    assert "did you mean 'crossbridge_coverage'?" in done.stderr


def test_disabled_distribution_loads_no_instrumentor():
    """CROSSBRIDGE_OTEL_ENABLED=false: not even the contrib threading instrumentation is applied."""
    probe = ("from opentelemetry.instrumentation.threading import ThreadingInstrumentor\n"
             "print(ThreadingInstrumentor().is_instrumented_by_opentelemetry)")
    assert _instrumented(probe).stdout.strip() == "True"
    assert _instrumented(probe, CROSSBRIDGE_OTEL_ENABLED="false").stdout.strip() == "False"


def test_local_output_gets_a_run_id_the_children_inherit(tmp_path):
    """With a local output file the distro puts CROSSBRIDGE_OTEL_RUN_ID in the environment; a set one is kept."""
    code = "import os; print(os.environ.get('CROSSBRIDGE_OTEL_RUN_ID', ''))"
    made = _instrumented(code, CROSSBRIDGE_OTEL_LOCAL_OUTPUT=str(tmp_path / "t.jsonl")).stdout.strip()
    assert made and made.endswith(tuple("0123456789"))
    assert _instrumented(code, CROSSBRIDGE_OTEL_LOCAL_OUTPUT=str(tmp_path / "t.jsonl"),
                         CROSSBRIDGE_OTEL_RUN_ID="ci-7").stdout.strip() == "ci-7"
    assert _instrumented(code).stdout.strip() == ""


def test_log_level_value_is_checked():
    """OTEL_LOG_LEVEL (the distribution's own voice) accepts debug/info/warn(ing)/error; 'verbose' is reported."""
    assert _check(OTEL_LOG_LEVEL="DEBUG") == [] and _check(OTEL_LOG_LEVEL="warn") == []
    (message,) = _check(OTEL_LOG_LEVEL="verbose")
    assert message.startswith("OTEL_LOG_LEVEL='verbose'") and "warning is used" in message
