"""The retry invoker on scripted victims: attempts, events, verdicts, writes, settings, metrics."""

from __future__ import annotations

import sqlite3

import pytest
from opentelemetry.trace import StatusCode
from support.retry import attempts_by_outcome, retry_events

from crossbridge_otel.patching.readers import failed_if_false
from crossbridge_otel.patching.targets import Target
from crossbridge_otel.retry.invoker import Retry

M = "retry_victims.services"
READ = Target(M, "Reader.read", "victim.read", invokers=(Retry("default"),))
WRITE = Target(M, "Writer.write", "victim.write", invokers=(Retry("default", write=True),))
INIT = Target(M, "Store.initialize", "victim.initialize", outcome=failed_if_false(), invokers=(Retry("default"),))
EVENTS = Target(M, "Store.write_events", "victim.write_events", outcome=failed_if_false(),
                invokers=(Retry("default", write=True),))


def test_first_try_success_is_one_attempt_without_events(instrument, telemetry):
    """A first-try success returns the value, has no retry event and retry.attempts 1."""
    instrument(READ)
    from retry_victims.services import Reader

    assert Reader("value").read() == "value"
    span = telemetry.span("victim.read")
    assert retry_events(span) == []
    assert span.attributes["retry.attempts"] == 1
    assert attempts_by_outcome(telemetry, "victim.read") == {"ok": 1}


def test_transient_failures_are_retried_until_success(instrument, telemetry):
    """Two connection errors then a value: three attempts, two retry events, status unset."""
    instrument(READ)
    from retry_victims.services import Reader

    reader = Reader(ConnectionResetError("reset"), TimeoutError("slow"), "value")
    assert reader.read() == "value"
    assert reader.calls == 3
    span = telemetry.span("victim.read")
    events = retry_events(span)
    assert [e["retry.attempt"] for e in events] == [1, 2]
    assert all(e["retry.will_retry"] for e in events)
    assert [e["error.type"] for e in events] == ["ConnectionResetError", "TimeoutError"]
    assert events[0]["retry.max_attempts"] == 3
    assert span.attributes["retry.attempts"] == 3
    assert span.status.status_code != StatusCode.ERROR
    assert attempts_by_outcome(telemetry, "victim.read") == {"retried": 2, "ok": 1}


def test_giving_up_reraises_the_last_exception_with_error_status(instrument, telemetry):
    """Exhausted attempts re-raise the same last exception object; the final event has will_retry false."""
    instrument(READ)
    from retry_victims.services import Reader

    last = ConnectionError("third")
    reader = Reader(ConnectionError("first"), ConnectionError("second"), last)
    with pytest.raises(ConnectionError) as caught:
        reader.read()
    assert caught.value is last
    span = telemetry.span("victim.read")
    events = retry_events(span)
    assert [e["retry.will_retry"] for e in events] == [True, True, False]
    assert events[-1]["retry.delay_s"] == 0.0
    assert span.attributes["retry.attempts"] == 3
    assert span.status.status_code == StatusCode.ERROR
    assert attempts_by_outcome(telemetry, "victim.read") == {"retried": 2, "failed": 1}


@pytest.mark.parametrize("error", [ValueError("bad"), sqlite3.IntegrityError("dup"), KeyError("k")])
def test_permanent_errors_are_not_retried(instrument, telemetry, error):
    """A permanent error is one attempt and one final retry event."""
    instrument(READ)
    from retry_victims.services import Reader

    reader = Reader(error, "never")
    with pytest.raises(type(error)):
        reader.read()
    assert reader.calls == 1
    events = retry_events(telemetry.span("victim.read"))
    assert len(events) == 1 and events[0]["retry.will_retry"] is False


def test_sqlite_database_locked_is_retried(instrument, telemetry):
    """sqlite3 "database is locked" is transient; other sqlite operational errors are not."""
    instrument(READ)
    from retry_victims.services import Reader

    assert Reader(sqlite3.OperationalError("database is locked"), "rows").read() == "rows"
    with pytest.raises(sqlite3.OperationalError):
        Reader(sqlite3.OperationalError("no such table: x"), "rows").read()
    first, second = telemetry.spans("victim.read")
    assert first.attributes["retry.attempts"] == 2
    assert second.attributes["retry.attempts"] == 1


def test_swallowed_failure_is_retried_with_the_caught_exception(instrument, telemetry):
    """A False return hiding a transient exception is retried, and the event names that exception."""
    instrument(INIT)
    from retry_victims.services import Store

    store = Store(ConnectionRefusedError("connection refused"))
    assert store.initialize() is True
    span = telemetry.span("victim.initialize")
    (event,) = retry_events(span)
    assert event["error.type"] == "ConnectionRefusedError"
    assert "connection refused" in event["exception.message"]
    assert span.attributes["retry.attempts"] == 2
    assert span.status.status_code != StatusCode.ERROR


def test_swallowed_permanent_failure_is_not_retried(instrument, telemetry):
    """A False return hiding a permanent exception gives up at once; the span is ERROR with returned_false."""
    instrument(INIT)
    from retry_victims.services import Store

    store = Store(ValueError("invalid input syntax for type uuid"))
    assert store.initialize() is False
    assert store.calls == 1
    span = telemetry.span("victim.initialize")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "returned_false"
    assert [e.name for e in span.events] == ["exception", "retry"]


def test_false_without_a_caught_exception_is_a_decision_not_retried(instrument, telemetry):
    """write_events returning False before it tries anything (not initialized) is not retried."""
    instrument(EVENTS, retry_writes=True)
    from retry_victims.services import Store

    store = Store(initialized=False)
    assert store.write_events([1, 2]) is False
    assert telemetry.span("victim.write_events").attributes["retry.attempts"] == 1


def test_write_retried_when_failure_came_before_commit(instrument, telemetry):
    """With retry_writes, a batch that failed before commit is retried and committed once."""
    instrument(EVENTS, retry_writes=True)
    from retry_victims.services import Store

    store = Store(sqlite3.OperationalError("database is locked"))
    assert store.write_events([1, 2, 3]) is True
    assert store.connection.committed == [1, 2, 3]
    assert telemetry.span("victim.write_events").attributes["retry.attempts"] == 2


def test_write_not_retried_when_commit_itself_failed(instrument, telemetry):
    """A failure inside commit may have stored the rows: reported (ERROR), never repeated."""
    instrument(EVENTS, retry_writes=True)
    from retry_victims.services import Connection, Store

    store = Store(connection=Connection([sqlite3.OperationalError("database is locked")]))
    assert store.write_events([1, 2]) is False
    assert store.calls == 1
    span = telemetry.span("victim.write_events")
    assert span.status.status_code == StatusCode.ERROR
    (event,) = retry_events(span)
    assert event["retry.will_retry"] is False


def test_writes_are_not_retried_by_default(instrument, telemetry):
    """Without retry_writes a write target is a plain call: one attempt, no retry attribute."""
    instrument(EVENTS, WRITE)
    from retry_victims.services import Store, Writer

    store = Store(ConnectionResetError("lost"))
    assert store.write_events([1]) is False
    assert store.calls == 1
    with pytest.raises(ConnectionResetError):
        Writer(ConnectionResetError("lost")).write([1])
    assert "retry.attempts" not in telemetry.span("victim.write_events").attributes


def test_raising_write_retried_only_when_never_sent(instrument, telemetry):
    """A raising write is retried on connection refused, not on a connection reset mid-request."""
    instrument(WRITE, retry_writes=True)
    from retry_victims.services import Writer

    refused = Writer(ConnectionRefusedError("refused"), "created")
    assert refused.write([1]) == "created"
    reset = Writer(ConnectionResetError("reset"), "created")
    with pytest.raises(ConnectionResetError):
        reset.write([1])
    assert (refused.calls, reset.calls) == (2, 1)


def test_retry_switched_off_gives_plain_calls(instrument, telemetry):
    """CROSSBRIDGE_OTEL_RETRY=false removes the layer: one attempt, the error propagates."""
    instrument(READ, retry=False)
    from retry_victims.services import Reader

    reader = Reader(ConnectionError("x"), "value")
    with pytest.raises(ConnectionError):
        reader.read()
    assert reader.calls == 1


def test_policy_override_from_settings_sets_attempts(instrument, telemetry):
    """retry_policies can raise a policy's attempts (default=5:...)."""
    instrument(READ, retry_policies="default=5:0.001:0.002")
    from retry_victims.services import Reader

    reader = Reader(*[ConnectionError(str(i)) for i in range(4)], "value")
    assert reader.read() == "value"
    events = retry_events(telemetry.span("victim.read"))
    assert len(events) == 4 and events[0]["retry.max_attempts"] == 5


def test_budget_stops_retrying_before_attempts_run_out(instrument, telemetry):
    """A retry budget smaller than the next delay gives up early with will_retry false."""
    instrument(READ, retry_policies="default=10:0.2:0.2:1", retry_budget=0.05)
    from retry_victims.services import Reader

    reader = Reader(*[ConnectionError(str(i)) for i in range(10)])
    with pytest.raises(ConnectionError):
        reader.read()
    assert reader.calls < 10
    assert retry_events(telemetry.span("victim.read"))[-1]["retry.will_retry"] is False


def test_retry_must_be_the_last_invoker_of_a_row():
    """A row with an invoker after Retry (which calls the original itself) is refused when it is declared."""
    from crossbridge_otel.retry.ratelimit import RateLimit

    with pytest.raises(TypeError, match="must be the last"):
        Target(M, "Reader.read", "victim.read", invokers=(Retry("default"), RateLimit("translation")))
