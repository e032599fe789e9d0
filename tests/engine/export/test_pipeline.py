"""Bounded exit: with the collector down, refusing or hung, the program ends within the export timeout + 0.5 s
(beyond what the same program takes to end without us) and says what it dropped in one line."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import pytest
from support.engine import INSTRUMENT, REPO, child_env
from support.otlp_sink import BlackHole, OtlpSink  # noqa: E402

SPANS, LOGS = 40, 15
BUDGET_S = 2.0

PROGRAM = f"""
import time
from opentelemetry import trace
from opentelemetry._logs import get_logger
tracer = trace.get_tracer("exit-probe")
for i in range({SPANS}):
    with tracer.start_as_current_span("work"):
        pass
log = get_logger("exit-probe")
for i in range({LOGS}):
    log.emit(body="record %d" % i)
import sys
configurator = sys.modules.get("crossbridge_otel.configurator")  # loaded by opentelemetry-instrument only
pipeline = configurator.active_pipeline() if configurator is not None else None
queues = (*pipeline.span_queues, *pipeline.log_queues) if pipeline is not None else ()
deadline = time.monotonic() + 30  # bounds a failure only
# every export worker's first, doomed attempt has begun (in flight, or already failed and counted)
while not all(q._in_flight or q.dropped for q in queues):
    assert time.monotonic() < deadline, "no export attempt began"
    time.sleep(0.01)
print("END", repr(time.time()), flush=True)
"""


def _closed_port_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# Contrib instrumentations of the test environment that are not under test: SQLAlchemy's makes
# opentelemetry-instrument print a start-up line (README, Known limits); openai-v2's imports openai at start-up.
_NOT_UNDER_TEST = {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "sqlalchemy,openai"}
_plain: list[float] = []


def _plain_lag() -> float:
    """Seconds the same program takes to end after its last statement without opentelemetry-instrument."""
    if not _plain:
        _plain.append(_run(None)[0])
    return _plain[0]


def _run(endpoint: str | None) -> tuple[float, str]:
    """Run the program (plainly without ``endpoint``); seconds from its last statement to exit, and stderr."""
    command = [sys.executable, "-c", PROGRAM]
    if endpoint is not None:
        command.insert(0, str(INSTRUMENT))
    process = subprocess.Popen(
        command, env=child_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint or "", **_NOT_UNDER_TEST),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO),
    )
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    exited = time.time()
    match = re.search(r"^END (\S+)$", stdout, re.MULTILINE)
    assert match, (stdout, stderr)
    return exited - float(match.group(1)), stderr


def _assert_bounded_and_counted(lag: float, stderr: str) -> None:
    plain = _plain_lag()
    assert lag - plain < BUDGET_S, f"exit took {lag:.2f} s after the program's end (plain: {plain:.2f} s)\n{stderr}"
    (line,) = stderr.splitlines()  # no SDK retry chatter, no shutdown warning: our one line
    match = re.search(r"^crossbridge-otel: dropped (\d+) spans and (\d+) log records", line)
    assert match, stderr
    assert (int(match.group(1)), int(match.group(2))) == (SPANS, LOGS), stderr
    assert "CROSSBRIDGE_OTEL_LOCAL_OUTPUT" in line, line


def test_collector_down_exits_promptly_and_counts_drops():
    """Nothing listening on the endpoint: exit within 2 s; every span and log record reported dropped."""
    _assert_bounded_and_counted(*_run(_closed_port_endpoint()))


@pytest.mark.parametrize("status", [503, 429])
def test_collector_refusing_exits_promptly_and_counts_drops(status):
    """A collector answering 503/429 (retryable) to everything: exit within 2 s; all drops reported."""
    with OtlpSink(status=status) as sink:
        _assert_bounded_and_counted(*_run(sink.endpoint))
        assert sink.requests >= 1


def test_collector_hung_exits_promptly_and_counts_drops():
    """A collector that accepts connections and never answers: exit within 2 s; all drops reported."""
    with BlackHole() as hole:
        _assert_bounded_and_counted(*_run(hole.endpoint))
        assert hole.connections >= 1
