"""CrossBridgeLogger records (non-propagating, cached, folding kwargs, custom levels) exported once."""

from __future__ import annotations

import logging

import pytest
from opentelemetry._logs import SeverityNumber
from support.logs import attrs, by_body

HERE = __file__


def test_record_carries_the_wrapper_category(bridged, telemetry, cb, unique):
    """A record from get_logger(name, EXECUTION) is exported with crossbridge.category=execution."""
    cb.get_logger(unique(), cb.LogCategory.EXECUTION).info("category probe")
    (record,) = by_body(telemetry, "category probe")
    assert attrs(record)["crossbridge.category"] == "execution"


def test_first_get_logger_category_wins(bridged, telemetry, cb, unique):
    """A second get_logger call with another category keeps the first call's category, as CrossBridge does."""
    name = unique()
    first = cb.get_logger(name, cb.LogCategory.AI)
    second = cb.get_logger(name, cb.LogCategory.EXECUTION)
    second.info("first wins")
    assert first is second
    assert [attrs(r)["crossbridge.category"] for r in by_body(telemetry, "first wins")] == ["ai"]


def test_logger_name_is_the_instrumentation_scope(bridged, telemetry, cb, unique):
    """The stdlib logger name crossbridge.<name> is the record's instrumentation scope."""
    name = unique()
    cb.get_logger(name).warning("scope probe")
    finished = [f for f in telemetry.logs_exporter.get_finished_logs() if f.log_record.body == "scope probe"]
    assert [f.instrumentation_scope.name for f in finished] == [f"crossbridge.{name}"]


def test_trace_and_success_levels_map_to_trace_and_info2(bridged, telemetry, cb, unique):
    """TRACE (5) maps to TRACE and SUCCESS (25) to INFO2 with severity text SUCCESS."""
    log = cb.get_logger(unique(), level=cb.LogLevel.TRACE)
    log.trace("level trace")
    log.success("level success")
    (trace,) = by_body(telemetry, "level trace")
    (success,) = by_body(telemetry, "level success")
    assert (trace.severity_number, trace.severity_text) == (SeverityNumber.TRACE, "TRACE")
    assert (success.severity_number, success.severity_text) == (SeverityNumber.INFO2, "SUCCESS")


@pytest.mark.parametrize(
    ("method", "number", "text"),
    [("debug", SeverityNumber.DEBUG, "DEBUG"), ("info", SeverityNumber.INFO, "INFO"),
     ("warning", SeverityNumber.WARN, "WARN"), ("error", SeverityNumber.ERROR, "ERROR"),
     ("critical", SeverityNumber.FATAL, "FATAL")],
)
def test_standard_levels_follow_the_sdk_mapping(bridged, telemetry, cb, unique, method, number, text):
    """DEBUG..CRITICAL get the severity number and text the SDK's own handler gives them."""
    getattr(cb.get_logger(unique(), level=cb.LogLevel.DEBUG), method)(f"std {method}")
    (record,) = by_body(telemetry, f"std {method}")
    assert (record.severity_number, record.severity_text) == (number, text)


def test_folded_kwargs_become_attributes_and_the_text_stays(bridged, telemetry, cb, unique):
    """Keyword fields and extra= are attributes crossbridge.log.<key>; the body is CrossBridge's folded text."""
    log = cb.get_logger(unique())
    log.add_context(run="r1")
    log.info("fields probe", tests=3, ratio=0.5, ok=True, extra={"k": "v"})
    (record,) = by_body(telemetry, "fields probe")
    assert record.body == "fields probe [run=r1 tests=3 ratio=0.5 ok=True extra={'k': 'v'}]"
    fields = {k: v for k, v in attrs(record).items() if k.startswith("crossbridge.log.")}
    assert fields == {
        "crossbridge.log.run": "r1", "crossbridge.log.tests": 3, "crossbridge.log.ratio": 0.5,
        "crossbridge.log.ok": True, "crossbridge.log.extra": "{'k': 'v'}",
    }


def test_category_and_brand_context_are_not_fields(bridged, telemetry, cb, unique):
    """CrossBridge's hidden context keys (category, brand) do not become crossbridge.log.* attributes."""
    cb.get_logger(unique()).info("hidden probe", n=1)
    (record,) = by_body(telemetry, "hidden probe")
    assert "crossbridge.log.brand" not in attrs(record)
    assert "crossbridge.log.category" not in attrs(record)


def test_helper_methods_export_their_fields(bridged, telemetry, cb, unique):
    """test_passed goes through success(): SUCCESS severity and its test= field as an attribute."""
    cb.get_logger(unique()).test_passed("LoginTest", duration=1.5)
    (record,) = by_body(telemetry, "✅ Test passed: LoginTest")
    assert record.severity_text == "SUCCESS"
    assert attrs(record)["crossbridge.log.test"] == "LoginTest"


def _log_from_here(log):
    log.info("location probe")
    return _log_from_here.__code__.co_firstlineno + 1


def test_code_location_is_the_real_caller(bridged, telemetry, cb, unique):
    """code.* point at the function that called the CrossBridgeLogger, not at core/logging/logger.py."""
    line = _log_from_here(cb.get_logger(unique()))
    (record,) = by_body(telemetry, "location probe")
    a = attrs(record)
    assert a["code.file.path"] == HERE
    assert a["code.function.name"] == f"{__name__}._log_from_here"
    assert a["code.line.number"] == line


def test_helper_location_skips_every_wrapper_frame(bridged, telemetry, cb, unique):
    """A helper (ai_error -> error) still reports the test function as the caller."""
    cb.get_logger(unique()).ai_error("quota", operation="translate")
    (record,) = by_body(telemetry, "🤖 AI Error during translate")
    assert attrs(record)["code.function.name"].endswith("test_helper_location_skips_every_wrapper_frame")


def test_exception_location_and_attributes(bridged, telemetry, cb, unique):
    """exception() records exception.type/message and still locate the caller past the extra logging frame."""
    try:
        raise ValueError("bad value")
    except ValueError:
        cb.get_logger(unique()).exception("exception probe")
    (record,) = by_body(telemetry, "exception probe")
    a = attrs(record)
    assert (a["exception.type"], a["exception.message"]) == ("ValueError", "bad value")
    assert "Traceback" in a["exception.stacktrace"]
    assert a["code.function.name"].endswith("test_exception_location_and_attributes")


def test_trace_and_span_ids_inside_a_span(bridged, telemetry, cb, unique):
    """A record logged inside a span carries that span's trace and span ids."""
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        cb.get_logger(unique()).info("span probe")
    (record,) = by_body(telemetry, "span probe")
    context = span.get_span_context()
    assert (record.trace_id, record.span_id) == (context.trace_id, context.span_id)


def test_no_trace_ids_outside_a_span(bridged, telemetry, cb, unique):
    """Outside any span the record has no trace id."""
    cb.get_logger(unique()).info("no span probe")
    (record,) = by_body(telemetry, "no span probe")
    assert not record.trace_id


def test_below_level_records_are_not_exported_and_levels_stay(bridged, telemetry, cb, unique):
    """A DEBUG record on an INFO logger is not exported and the logger's level is unchanged."""
    log = cb.get_logger(unique())
    log.debug("below probe")
    assert by_body(telemetry, "below probe") == []
    assert log._logger.level == logging.INFO


def test_loggers_created_before_instrumenting_are_bridged(telemetry, cb, unique):
    """A CrossBridgeLogger already in the _loggers cache when instrumentation starts is bridged."""
    from crossbridge_otel.instrumentors.logging import LoggingInstrumentor

    early = cb.get_logger(unique("early"), cb.LogCategory.PERFORMANCE)
    inst = LoggingInstrumentor()
    inst.instrument(**telemetry.providers)
    try:
        early.info("early probe")
    finally:
        inst.uninstrument()
    (record,) = by_body(telemetry, "early probe")
    assert attrs(record)["crossbridge.category"] == "performance"


def test_secrets_in_text_and_fields_are_redacted(bridged, telemetry, cb, unique):
    """A token in the text and a password= field are masked in the body and the attributes."""
    cb.get_logger(unique()).info("connect postgresql://app:s3cr3t@db/x", password="hunter2", user="bob")
    (record,) = by_body(telemetry, "connect")
    assert "s3cr3t" not in record.body and "hunter2" not in record.body
    a = attrs(record)
    assert a["crossbridge.log.password"] == "***"
    assert a["crossbridge.log.user"] == "bob"


@pytest.mark.parametrize(
    "text",
    ["postgresql://app:pw@db/x", "Authorization: Bearer abc.def", "--password hunter2", "api_key=1234",
     "Token xyz", "secret: s", "pwd=1", "credentials=a", "session_id=9", "cookie=c", "ACCESS-KEY=k"],
)
def test_redaction_precheck_never_skips_text_that_redaction_changes(text):
    """The cheap precheck flags every text whose redaction changes it, so skipping redaction is safe."""
    from crossbridge_otel.logs.handler import _suspect
    from crossbridge_otel.redaction import redact

    assert redact(text) != text
    assert _suspect(text)
