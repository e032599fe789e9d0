"""The one line at exit (``crossbridge_otel.export.losses``): counts, destination, reason in a few words, remedy."""

from __future__ import annotations

import pytest

from crossbridge_otel.export.losses import Loss, drop_line, short_reason


@pytest.mark.parametrize(("problem", "short"), [
    ("Transient error HTTPConnectionPool(host='127.0.0.1', port=4318): Max retries exceeded with url: /v1/traces "
     "(Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] Connection refused'))",
     "connection refused"),
    ("Failed to export spans batch code: 400, reason: Bad Request", "HTTP 400"),
    ("HTTPConnectionPool(host='127.0.0.1', port=4318): Read timed out. (read timeout=10)", "timed out"),
    ("NotADirectoryError: [Errno 20] Not a directory: '/x/not-a-dir/telemetry.jsonl'", "Not a directory"),
    ("RuntimeError: an exporter that raises", "RuntimeError: an exporter that raises"),
])
def test_short_reason_names_the_cause_in_a_few_words(problem, short):
    """A library's long failure text becomes the few words the exit line shows."""
    assert short_reason(problem) == short


def test_nothing_dropped_says_nothing():
    """No loss, no line."""
    assert drop_line([]) is None


def test_missing_collector_line_names_counts_endpoint_and_remedy():
    """Collector not there: counts, endpoint, 'connection refused', and how to keep the telemetry next time."""
    line = drop_line([Loss("http://localhost:4318", spans=40, logs=15, points=3,
                           problem="Failed to establish a new connection: [Errno 111] Connection refused")])
    assert line == (
        "crossbridge-otel: dropped 40 spans and 15 log records and 3 metric points that could not be exported to "
        "http://localhost:4318 (connection refused); to keep them next time, start the collector there or set "
        "CROSSBRIDGE_OTEL_LOCAL_OUTPUT=<file> to write them to a file")


def test_unwritable_file_line_asks_for_a_writable_file():
    """Only the local file lost something: the remedy is a file this process can write."""
    line = drop_line([Loss("/ro/telemetry.jsonl", spans=2, problem="PermissionError: [Errno 13] Permission denied")])
    assert "written to /ro/telemetry.jsonl (Permission denied)" in line
    assert line.endswith("set CROSSBRIDGE_OTEL_LOCAL_OUTPUT to a file this process can write")


def test_deadline_only_loss_suggests_a_longer_export_timeout():
    """Nothing failed, time ran out at exit: the line says so and names CROSSBRIDGE_OTEL_EXPORT_TIMEOUT."""
    line = drop_line([Loss("http://collector:4318", logs=7, reasons={"exit_deadline"})])
    assert "(not sent before the exit deadline, CROSSBRIDGE_OTEL_EXPORT_TIMEOUT)" in line
    assert "raise CROSSBRIDGE_OTEL_EXPORT_TIMEOUT" in line
