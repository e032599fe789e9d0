"""Our threads stay out of the application's logs, and the distribution speaks in one voice (``_voice``)."""

from __future__ import annotations

import logging
import threading

import pytest

from crossbridge_otel import _voice
from crossbridge_otel.logs.handler import BridgeHandler


class Raising(logging.Filter):
    def filter(self, record):  # noqa: A003
        raise TypeError("a host filter that raises")


class Recording(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


class Said:
    """What our stderr line printed (read through pytest's capsys)."""

    def __init__(self, capsys):
        self._capsys = capsys
        self._text = ""

    def getvalue(self) -> str:
        self._text += self._capsys.readouterr().err
        return self._text


@pytest.fixture
def voice(monkeypatch, capsys):
    """The voice installed as under opentelemetry-instrument (its stderr line captured); taken back afterwards."""
    monkeypatch.delenv("OTEL_LOG_LEVEL", raising=False)
    _voice.install()
    yield Said(capsys)
    _voice.uninstall()


@pytest.fixture
def root_handler():
    """A DEBUG root handler that records what reaches the application's handlers."""
    root = logging.getLogger()
    handler, level = Recording(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def _on_our_thread(action):
    def run():
        _voice.mark_thread()
        action()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(5)
    assert not worker.is_alive()


def test_library_records_on_our_threads_never_reach_the_applications_handlers(voice, root_handler):
    """urllib3's DEBUG line and an exporter's WARNING logged on an export thread meet no handler of the host."""
    root_handler.addFilter(Raising())  # would raise inside the export thread if the record got there
    problems = []

    def export():
        logging.getLogger("urllib3.connectionpool").debug("Starting new HTTP connection (%d): %s", 1, "127.0.0.1")
        logging.getLogger("opentelemetry.exporter").warning("Transient error %s, retrying", "Connection refused")
        problems.append(_voice.take_problem())

    _on_our_thread(export)
    assert root_handler.records == []
    assert problems == ["Transient error Connection refused, retrying"]
    assert voice.getvalue() == ""  # not said then: folded into the exit line


def test_a_blocking_application_handler_cannot_stall_our_threads(voice):
    """A root handler that blocks forever is never called from an export thread."""
    gate = threading.Event()
    reached: list[str] = []

    class Blocking(logging.Handler):
        def emit(self, record):
            reached.append(threading.current_thread().name)
            gate.wait()

    root = logging.getLogger()
    blocking = Blocking()
    root.addHandler(blocking)
    try:
        _on_our_thread(lambda: logging.getLogger("urllib3").warning("Retrying after connection broken"))
        assert reached == []
    finally:
        gate.set()
        root.removeHandler(blocking)


def test_application_threads_log_exactly_as_before(voice, root_handler):
    """On the application's thread the same record object reaches the application's handler."""
    logger = logging.getLogger("core.faults.voice")
    logger.info("hello %s", "world")
    (record,) = root_handler.records
    assert record.getMessage() == "hello world" and record.name == "core.faults.voice"


def test_our_lines_never_reach_the_application_and_survive_its_raising_filter(voice, root_handler):
    """A contained-failure line goes to our stderr line, not to root, and a raising root filter cannot stop it."""
    root_handler.addFilter(Raising())
    _voice.say(logging.WARNING, "crossbridge-otel: one line")
    assert voice.getvalue() == "crossbridge-otel: one line\n"
    assert root_handler.records == []


def test_sdk_warnings_are_one_line_per_logger(voice, root_handler):
    """The SDK's attribute warnings on the application's thread: one line of ours, none for the host."""
    for value in ("numpy.int64", "numpy.float32", "dict"):
        logging.getLogger("opentelemetry.attributes").warning("Invalid type %s for attribute value", value)
    assert voice.getvalue().count("\n") == 1
    assert "[opentelemetry.attributes] Invalid type numpy.int64" in voice.getvalue()
    assert root_handler.records == []


def test_an_unsupported_contrib_library_version_is_not_a_line(voice, root_handler):
    """The loader's "sqlalchemy only instruments ... nothing can be instrumented" (every start beside CrossBridge's
    SQLAlchemy 2.1) says nothing about the run: no line; another loader warning still is one."""
    loader = logging.getLogger("opentelemetry.instrumentation.auto_instrumentation._load")
    loader.error('sqlalchemy only instruments "sqlalchemy<2.1.0,>=1.0.0", but currently installed version '
                 '("sqlalchemy 2.1.9") falls outside of that range, so nothing can be instrumented.')
    assert voice.getvalue() == ""
    loader.warning("Failed to load instrumentation %s", "somelib")
    assert voice.getvalue().count("\n") == 1 and root_handler.records == []


def test_debug_level_repeats_every_diverted_record(monkeypatch, capsys, root_handler):
    """OTEL_LOG_LEVEL=debug: what our threads logged is said in full, with the library's logger name."""
    monkeypatch.setenv("OTEL_LOG_LEVEL", "debug")
    _voice.install()
    try:
        _on_our_thread(lambda: logging.getLogger("urllib3.connectionpool").debug("Starting new HTTP connection"))
    finally:
        _voice.uninstall()
    assert "[urllib3.connectionpool] DEBUG: Starting new HTTP connection" in capsys.readouterr().err
    assert root_handler.records == []


def test_uninstall_restores_logging_as_it_was(voice):
    """After uninstall, Logger.handle is the stdlib's and our loggers propagate again."""
    _voice.uninstall()
    assert logging.Logger.handle.__module__ == "logging"
    assert logging.getLogger("crossbridge_otel").propagate and logging.getLogger("opentelemetry").propagate
    assert logging.getLogger("crossbridge_otel").level == logging.NOTSET


def test_bridge_still_finds_the_real_caller_with_handle_wrapped(voice, telemetry):
    """The log bridge's caller lookup accounts for the wrapped Logger.handle (one frame more)."""
    logger = logging.getLogger("core.faults.caller")
    handler = BridgeHandler(telemetry.logger_provider)
    logger.addHandler(handler)
    try:
        logger.warning("from the caller")
    finally:
        logger.removeHandler(handler)
    (record,) = telemetry.logs()
    assert record.attributes["code.function.name"] == (
        f"{__name__}.test_bridge_still_finds_the_real_caller_with_handle_wrapped")
