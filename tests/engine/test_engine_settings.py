"""Settings: one table, a stated precedence, and one clear warning per bad or unknown variable."""

from __future__ import annotations

import logging

import pytest

from crossbridge_otel import settings
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
