"""Plain stdlib loggers under core/adapters/services, and the root-reconfiguring logging service."""

from __future__ import annotations

import logging

import pytest
from support.logs import attrs, by_body

from crossbridge_otel.instrumentors.logging import LoggingInstrumentor
from crossbridge_otel.logs.bridge import category_of_module


@pytest.mark.parametrize(
    ("logger_name", "category"),
    [("core.execution.orchestration.adapters", "orchestration"), ("core.observability.hook_sdk", "observer"),
     ("core.profiling.storage", "performance"), ("core.coverage.repository", "persistence"),
     ("services.logging_service", "general"), ("adapters.pytest.adapter", "adapter")],
)
def test_plain_logger_exported_with_its_module_category(bridged, telemetry, logger_name, category):
    """A plain logger in a CrossBridge package is exported once with the category of its module."""
    logging.getLogger(logger_name).warning("plain %s", logger_name)
    records = by_body(telemetry, f"plain {logger_name}")
    assert [attrs(r)["crossbridge.category"] for r in records] == [category]


def test_category_table_prefers_the_longest_prefix():
    """core.coverage is testing but its repository module is persistence; unknown modules are general."""
    assert category_of_module("core.coverage.jacoco_parser") == "testing"
    assert category_of_module("core.coverage.repository") == "persistence"
    assert category_of_module("core.something_new") == "general"


def test_plain_logger_extra_fields_and_location(bridged, telemetry):
    """extra= fields become crossbridge.log.* and code.function.name is the module-qualified caller."""
    logging.getLogger("core.observability.event_persistence").warning("persist %d", 3, extra={"table": "events"})
    (record,) = by_body(telemetry, "persist 3")
    a = attrs(record)
    assert a["crossbridge.log.table"] == "events"
    assert a["code.function.name"] == f"{__name__}.test_plain_logger_extra_fields_and_location"
    assert a["code.file.path"] == __file__


def test_crossbridge_module_loggers_are_exported(bridged, telemetry):
    """A real CrossBridge module's own plain logger (core.config.loader's) is bridged like any other."""
    import core.config.loader as loader

    loader.logger.error("loader probe")
    assert [attrs(r)["crossbridge.category"] for r in by_body(telemetry, "loader probe")] == ["general"]


def test_loggers_outside_crossbridge_packages_are_not_exported(bridged, telemetry):
    """Third-party and OpenTelemetry loggers are not bridged."""
    logging.getLogger("thirdparty.module").warning("foreign probe")
    logging.getLogger("opentelemetry.sdk.test").warning("otel probe")
    assert by_body(telemetry, "foreign probe") == [] and by_body(telemetry, "otel probe") == []


def test_root_logger_gets_no_handler(telemetry):
    """Instrumenting adds nothing to the root logger, so the secure-logging bug sees no extra handler."""
    before = list(logging.getLogger().handlers)
    inst = LoggingInstrumentor()
    inst.instrument(**telemetry.providers)
    try:
        assert logging.getLogger().handlers == before
    finally:
        inst.uninstrument()


def test_setup_logging_causes_no_duplicates(bridged, telemetry, tmp_path):
    """After setup_logging (root DEBUG, two root handlers) a plain record is exported once and still filed."""
    import services.logging_service as service

    log_file = service.setup_logging(log_dir=tmp_path)
    logging.getLogger("core.execution.orchestration.plugin").info("after setup")
    assert len(by_body(telemetry, "after setup")) == 1
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "after setup" in log_file.read_text()


def test_crossbridge_logger_records_stay_out_of_the_run_log(bridged, telemetry, cb, unique, tmp_path):
    """CrossBridgeLogger records are exported but still never reach setup_logging's file (as verified)."""
    import services.logging_service as service

    log_file = service.setup_logging(log_dir=tmp_path)
    cb.get_logger(unique()).info("wrapper after setup")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert len(by_body(telemetry, "wrapper after setup")) == 1
    assert "wrapper after setup" not in log_file.read_text()


def _secure_logging_outcome(tmp_path, handlers: int) -> tuple[str, str]:
    """Root with ``handlers`` handlers, configure_secure_logging, log one %-formatted record."""
    import services.logging_service as service

    tmp_path.mkdir()
    root = logging.getLogger()
    root.handlers[:] = []
    for _ in range(handlers):
        root.addHandler(logging.FileHandler(tmp_path / f"root{len(root.handlers)}.log"))
    root.setLevel(logging.DEBUG)
    service.configure_secure_logging()
    try:
        logging.getLogger("services.probe").info("value %s token=abc", "x")
        outcome = "ok"
    except TypeError as exc:
        outcome = f"TypeError: {exc}"
    for handler in root.handlers:
        handler.flush()
    return outcome, (tmp_path / "root0.log").read_text()


@pytest.mark.parametrize("handlers", [1, 2])
def test_configure_secure_logging_behaves_the_same_with_the_bridge(telemetry, tmp_path, handlers):
    """The secure-logging bug fires exactly when it fires without us (2 root handlers), never because of us."""
    without = _secure_logging_outcome(tmp_path / "without", handlers)
    inst = LoggingInstrumentor()
    inst.instrument(**telemetry.providers)
    try:
        with_bridge = _secure_logging_outcome(tmp_path / "with", handlers)
    finally:
        inst.uninstrument()
    assert with_bridge == without
    assert without[0] == ("ok" if handlers == 1 else "TypeError: not all arguments converted during string formatting")
    exported = by_body(telemetry, "value x")
    assert len(exported) == 1 and "abc" not in exported[0].body


def test_last_resort_still_prints_when_root_has_no_handlers(bridged, telemetry, capsys):
    """With no root handler, a plain WARNING still reaches stderr through logging.lastResort, as without us."""
    logging.getLogger().handlers[:] = []
    logging.getLogger("core.observability.hook_sdk").warning("last resort probe")
    assert "last resort probe" in capsys.readouterr().err
    assert len(by_body(telemetry, "last resort probe")) == 1


def test_last_resort_not_used_when_another_handler_exists(bridged, telemetry, capsys):
    """When root has a handler, our handler never adds a lastResort print of its own."""
    logging.getLogger().handlers[:] = [logging.NullHandler()]
    logging.getLogger("core.observability.hook_sdk").warning("no last resort probe")
    assert "no last resort probe" not in capsys.readouterr().err
