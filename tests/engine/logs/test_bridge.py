"""Install, duplicates, re-entrance, uninstall, settings and TARGETS.md §13 row 1."""

from __future__ import annotations

import logging
import sys

from opentelemetry.sdk._logs import LogRecordProcessor
from support.logs import attrs, by_body

from crossbridge_otel.instrumentors.logging import LoggingInstrumentor
from crossbridge_otel.logs.bridge import PACKAGES, LogBridge
from crossbridge_otel.logs.handler import BridgeHandler
from crossbridge_otel.patching import status


def _bridge_handlers(logger: logging.Logger) -> list:
    return [h for h in logger.handlers if isinstance(h, BridgeHandler)]


def test_targets_row_1(bridged, telemetry, cb):
    """TARGETS §13 row 1: demo.mod is non-propagating, root sees nothing, one INFO record with category execution."""
    seen = []
    root_probe = logging.Handler()
    root_probe.emit = seen.append
    logging.getLogger().addHandler(root_probe)
    log = cb.get_logger("demo.mod", cb.LogCategory.EXECUTION)
    log.info("hello")
    log.success("ok")
    assert log._logger.name == "crossbridge.demo.mod" and log._logger.propagate is False
    assert [r for r in seen if r.name == "crossbridge.demo.mod"] == []
    (hello,) = [r for r in telemetry.logs() if r.body == "hello"]
    assert attrs(hello)["crossbridge.category"] == "execution" and hello.severity_text == "INFO"
    (ok,) = [r for r in telemetry.logs() if r.body == "ok"]
    assert ok.severity_text == "SUCCESS"


def test_instrumenting_twice_exports_once(bridged, telemetry, cb, unique):
    """A second instrument() call adds no second handler anywhere."""
    LoggingInstrumentor().instrument(**telemetry.providers)
    log = cb.get_logger(unique())
    log.info("twice probe")
    assert len(by_body(telemetry, "twice probe")) == 1
    assert len(_bridge_handlers(log._logger)) == 1
    assert all(len(_bridge_handlers(logging.getLogger(p))) == 1 for p in PACKAGES)


def test_two_bridges_attach_one_handler(telemetry, cb, unique):
    """A second LogBridge finds the first one's handlers and adds none: the first category stays."""
    first, second = LogBridge(telemetry.logger_provider), LogBridge(telemetry.logger_provider)
    first.install()
    second.install()
    try:
        log = cb.get_logger(unique())
        log.info("two bridges probe")
        assert len(by_body(telemetry, "two bridges probe")) == 1
        assert second.attached_loggers() == []
    finally:
        second.uninstall()
        first.uninstall()


def test_propagating_child_is_exported_once(bridged, telemetry, cb, unique):
    """If a CrossBridge logger propagates (newer CrossBridge does) into a bridged parent, it is exported once."""
    parent_name = unique("parent")
    cb.get_logger(parent_name, cb.LogCategory.AI)
    child = cb.get_logger(parent_name + ".child", cb.LogCategory.TESTING)
    child._logger.propagate = True
    child.info("child probe")
    assert [attrs(r)["crossbridge.category"] for r in by_body(telemetry, "child probe")] == ["testing"]


class _LoggingProcessor(LogRecordProcessor):
    """A processor that logs through CrossBridge loggers while a record is being exported."""

    def __init__(self, cb_logger):
        self.cb_logger = cb_logger
        self.calls = 0

    def on_emit(self, log_record):
        self.calls += 1
        self.cb_logger.warning("inner wrapper record")
        logging.getLogger("core.inner").warning("inner plain record")

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


def test_records_logged_during_export_do_not_reenter(bridged, telemetry, cb, unique):
    """Records logged by the export pipeline itself are not bridged again (no recursion, no export)."""
    processor = _LoggingProcessor(cb.get_logger(unique("inner")))
    telemetry.logger_provider.add_log_record_processor(processor)
    cb.get_logger(unique()).info("outer probe")
    assert processor.calls == 1
    assert len(by_body(telemetry, "outer probe")) == 1
    assert by_body(telemetry, "inner") == []


def test_uninstrument_restores_handlers_and_init(telemetry, cb, unique):
    """Uninstrument removes every bridge handler and puts the original CrossBridgeLogger.__init__ back."""
    original_init = cb.CrossBridgeLogger.__dict__["__init__"]
    package_handlers = {p: list(logging.getLogger(p).handlers) for p in PACKAGES}
    early = cb.get_logger(unique("early"))
    inst = LoggingInstrumentor()
    inst.instrument(**telemetry.providers)
    late = cb.get_logger(unique("late"))
    assert _bridge_handlers(early._logger) and _bridge_handlers(late._logger)
    assert cb.CrossBridgeLogger.__dict__["__init__"] is not original_init
    inst.uninstrument()
    assert cb.CrossBridgeLogger.__dict__["__init__"] is original_init
    assert not _bridge_handlers(early._logger) and not _bridge_handlers(late._logger)
    assert {p: list(logging.getLogger(p).handlers) for p in PACKAGES} == package_handlers
    late.info("after uninstall")
    logging.getLogger("core.x").error("after uninstall plain")
    assert by_body(telemetry, "after uninstall") == []


def test_uninstall_keeps_a_wrapper_installed_on_top(telemetry, cb):
    """If someone wraps CrossBridgeLogger.__init__ after us, uninstall leaves their wrapper in place."""
    bridge = LogBridge(telemetry.logger_provider)
    bridge.install()
    ours = cb.CrossBridgeLogger.__dict__["__init__"]

    def theirs(self, *args, **kwargs):
        ours(self, *args, **kwargs)

    cb.CrossBridgeLogger.__init__ = theirs
    try:
        bridge.uninstall()
        assert cb.CrossBridgeLogger.__dict__["__init__"] is theirs
    finally:
        cb.CrossBridgeLogger.__init__ = ours.__crossbridge_otel_original__


def test_logs_setting_off_installs_nothing(telemetry, cb, unique, monkeypatch):
    """CROSSBRIDGE_OTEL_LOGS=false: no handlers, nothing exported, the doctor says disabled."""
    monkeypatch.setenv("CROSSBRIDGE_OTEL_LOGS", "false")
    inst = LoggingInstrumentor()
    inst.instrument(**telemetry.providers)
    try:
        log = cb.get_logger(unique())
        log.warning("disabled probe")
        assert not _bridge_handlers(log._logger)
        assert by_body(telemetry, "disabled probe") == []
        states = {s.qualname: s.state for s in status.snapshot() if s.area == "logging"}
        assert states["CrossBridgeLogger.__init__"] == status.State.DISABLED
    finally:
        inst.uninstrument()


def test_doctor_status_reports_the_bridge(bridged):
    """The status registry shows CrossBridgeLogger.__init__ and the package loggers as patched."""
    states = {s.qualname: s.state for s in status.snapshot() if s.area == "logging"}
    assert set(states.values()) == {status.State.PATCHED}
    assert "CrossBridgeLogger.__init__" in states


def test_logger_module_imported_after_instrumenting(telemetry, monkeypatch):
    """When core.logging is imported after instrumentation, the post-import hook bridges its loggers."""
    saved = {n: m for n, m in sys.modules.items() if n == "core.logging" or n.startswith("core.logging.")}
    for name in saved:
        monkeypatch.delitem(sys.modules, name)
    import core

    monkeypatch.setattr(core, "logging", saved["core.logging"])
    inst = LoggingInstrumentor()
    inst.instrument(**telemetry.providers)
    try:
        import core.logging.logger as fresh

        assert fresh is not saved["core.logging.logger"]
        fresh._console_enabled = False
        fresh.get_logger("test.logbridge.fresh", fresh.LogCategory.GOVERNANCE).info("fresh probe")
    finally:
        inst.uninstrument()
        for name, module in saved.items():
            sys.modules[name] = module
    (record,) = by_body(telemetry, "fresh probe")
    assert attrs(record)["crossbridge.category"] == "governance"
    assert attrs(record)["code.function.name"].endswith("test_logger_module_imported_after_instrumenting")
