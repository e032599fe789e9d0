"""The retry invoker's loop in detail (its surviving mutants, tests/mutation): waits, budgets, workers, evidence,
nesting, the events of a give-up. Most drive a :class:`Retrier` directly on a fake clock and a fixed jitter draw."""

from __future__ import annotations

import logging
import sqlite3
import sys
import threading
import types

import backoff._sync
import pytest
import requests
from support.retry import attempts_by_outcome, retry_events

from crossbridge_otel import _guard
from crossbridge_otel.patching.readers import failed_if_false, failed_if_none
from crossbridge_otel.patching.targets import Target
from crossbridge_otel.retry import invoker, policies
from crossbridge_otel.retry.invoker import Retrier, Retry, Worker
from crossbridge_otel.retry.policies import Policy

ROW = Policy("row", 5, 0.5, 5.0)  # waits 0.5, 1, 2, 4 s with the fixed draw (u = 1)
ELSEWHERE = Policy("elsewhere", 2, 0.5, 5.0)


class FakeClock:
    """The invoker's clock and sleep: a sleep advances the clock and takes no time; ``hold`` runs first."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.loop_sleeps: list[float] = []  # backoff's own time.sleep calls
        self.hold = None

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.hold is not None:
            self.hold()
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """The invoker on a :class:`FakeClock`, backoff's sleeps recorded, the jitter draw fixed at its top (u = 1)."""
    fake = FakeClock()
    monkeypatch.setattr(invoker, "_monotonic", fake.monotonic)
    monkeypatch.setattr(invoker, "time", types.SimpleNamespace(sleep=fake.sleep, monotonic=fake.monotonic))
    monkeypatch.setattr(backoff._sync, "time", types.SimpleNamespace(sleep=fake.loop_sleeps.append))
    monkeypatch.setattr(policies, "random", types.SimpleNamespace(random=lambda: 1.0))
    return fake


@pytest.fixture
def span(telemetry):
    """A real SDK span, ended after the test."""
    made = telemetry.tracer_provider.get_tracer("test").start_span("op")
    yield made
    made.end()


def scripted(*steps):
    """A function taking the next step per call: an exception is raised, anything else returned."""
    script = list(steps)

    def fn(*args, **kwargs):
        step = script.pop(0) if script else "ok"
        if isinstance(step, BaseException):
            raise step
        return step

    fn.left = script  # type: ignore[attr-defined]
    return fn


def note(exc: BaseException) -> None:
    """What CrossBridge's ``except`` blocks do with the exception (log it): a Python call inside the handler."""
    NOTED.append(exc)


NOTED: list[BaseException] = []


def swallowing(*steps):
    """Like CrossBridge's storage backends: a raised step is caught, noted and turned into ``False``."""
    inner = scripted(*steps)

    def fn(*args, **kwargs):
        try:
            return inner(*args, **kwargs)
        except Exception as exc:
            note(exc)
            return False

    return fn


def swallowing_http_503(retry_after: str):
    """A call that swallows a requests 503 carrying ``Retry-After`` into ``None``, then succeeds."""
    response = requests.Response()
    response.status_code = 503
    response.headers["Retry-After"] = retry_after
    inner = scripted(requests.HTTPError("503 Server Error", response=response), "ok")

    def fn():
        try:
            return inner()
        except Exception as exc:
            note(exc)
            return None

    return fn


class Flusher:
    """A background worker: calls made inside ``flush_loop`` are on the worker's thread."""

    def __init__(self, running: bool = True) -> None:
        if running:
            self.running = True

    def flush_loop(self, retrier: Retrier, fn, span):
        return retrier.call(fn, span)


def test_waits_grow_by_the_policy_and_are_slept_as_recorded(clock, span):
    """Two failures: the waits 0.5 then 1 s (base, doubled) are slept and named by the events."""
    result = Retrier(ROW, budget=30).call(scripted(ConnectionError("a"), ConnectionError("b"), "value"), span)
    assert result == "value"
    assert clock.sleeps == [0.5, 1.0]
    assert [e["retry.delay_s"] for e in retry_events(span)] == [0.5, 1.0]


def test_the_backoff_loop_itself_never_sleeps(clock, span):
    """Every wait is the invoker's own (so a stopping worker can end it): backoff is handed zero each time."""
    Retrier(ROW, budget=30).call(scripted(ConnectionError("a"), ConnectionError("b"), "value"), span)
    assert clock.loop_sleeps == [0.0, 0.0]


def test_a_zero_wait_is_not_slept(clock, span):
    """A policy with no delay retries at once, without a call to sleep."""
    Retrier(Policy("now", 3, 0.0, 0.0), budget=30).call(scripted(ConnectionError("a"), "value"), span)
    assert clock.sleeps == []


def test_a_wait_that_would_reach_the_budget_is_not_started(clock, span):
    """Budget 1.5 s: the 0.5 s wait is slept, the 1 s one (ending exactly at the budget) is not: give up."""
    last = ConnectionError("b")
    with pytest.raises(ConnectionError) as caught:
        Retrier(ROW, budget=1.5).call(scripted(ConnectionError("a"), last, "value"), span)
    assert caught.value is last
    assert clock.sleeps == [0.5]
    assert [e["retry.will_retry"] for e in retry_events(span)] == [True, False]


def test_a_policy_budget_smaller_than_the_setting_bounds_the_call(clock, span):
    """A policy's own budget (1.5 s) wins over a larger retry budget setting (100 s)."""
    policy = Policy("bounded", 5, 0.5, 5.0, budget=1.5)
    with pytest.raises(ConnectionError):
        Retrier(policy, budget=100).call(scripted(*[ConnectionError(str(i)) for i in range(5)]), span)
    assert clock.sleeps == [0.5]


def test_keyword_arguments_reach_every_attempt(clock, span):
    """The first and the retried attempt both get the call's keyword arguments."""
    seen = []

    def fn(a, *, key):
        seen.append((a, key))
        if len(seen) == 1:
            raise ConnectionError("once")
        return key

    assert Retrier(ROW, budget=30).call(fn, span, 1, key="k") == "k"
    assert seen == [(1, "k"), (1, "k")]


def test_every_retried_attempt_of_a_swallowing_call_is_checked_again(clock, span):
    """Two swallowed transient failures then success: three attempts, the second one's False is not taken."""
    fn = swallowing(ConnectionRefusedError("refused"), ConnectionRefusedError("refused"), True)
    assert Retrier(ROW, budget=30, outcome=failed_if_false()).call(fn, span) is True
    assert span.attributes["retry.attempts"] == 3


def test_giving_up_on_swallowed_failures_returns_the_last_result(clock, span):
    """A call that swallows on every attempt: all attempts made, its own False returned, each event names the
    caught exception."""
    fn = swallowing(*[ConnectionRefusedError("refused")] * 5)
    assert Retrier(ROW, budget=30, outcome=failed_if_false()).call(fn, span) is False
    events = retry_events(span)
    assert [e["error.type"] for e in events] == ["ConnectionRefusedError"] * 5
    assert [e["retry.will_retry"] for e in events] == [True] * 4 + [False]


def test_a_write_that_raised_a_database_error_before_commit_is_retried(clock, span):
    """A raising write whose attempt never reached commit (database locked at the INSERT) is tried again."""
    fn = scripted(sqlite3.OperationalError("database is locked"), "written")
    assert Retrier(ROW, budget=30, write=True).call(fn, span) == "written"
    assert span.attributes["retry.attempts"] == 2


def test_without_evidence_an_idempotent_swallowed_failure_is_still_retried(clock, span):
    """Another profiler on the thread (no evidence): a swallowing read is retried all the same."""
    fn = swallowing(ConnectionRefusedError("refused"), True)
    sys.setprofile(lambda frame, event, arg: None)
    try:
        result = Retrier(ROW, budget=30, outcome=failed_if_false()).call(fn, span)
    finally:
        sys.setprofile(None)
    assert result is True
    assert span.attributes["retry.attempts"] == 2


def test_a_swallowed_http_errors_retry_after_sets_the_wait(clock, span):
    """A swallowed 503 with Retry-After: 2 waits the server's 2 s (not the policy's 0.5 s)."""
    retrier = Retrier(ROW, budget=30, outcome=failed_if_none())
    assert retrier.call(swallowing_http_503("2"), span) == "ok"
    assert clock.sleeps == [2.0]


def test_a_nested_retry_hands_the_outer_loop_back_its_call(clock, telemetry):
    """A retried call made inside another's retried attempt: once it is done, the outer loop goes on with its own
    call (attempts, policy, deadline)."""
    tracer = telemetry.tracer_provider.get_tracer("test")
    outer_span, inner_span = tracer.start_span("outer"), tracer.start_span("inner")
    inner = scripted(ConnectionError("inner"), "inner ok")
    attempts = []

    def outer():
        attempts.append(1)
        if len(attempts) == 2:
            Retrier(ELSEWHERE, budget=30).call(inner, inner_span)
        if len(attempts) < 3:
            raise ConnectionError(f"outer {len(attempts)}")
        return "outer ok"

    assert Retrier(ROW, budget=30).call(outer, outer_span) == "outer ok"
    assert (outer_span.attributes["retry.attempts"], inner_span.attributes["retry.attempts"]) == (3, 2)
    assert [e["retry.max_attempts"] for e in retry_events(outer_span)] == [5, 5]


def test_the_first_retry_on_a_new_thread_works(clock, span):
    """A thread that never retried before retries like any other."""
    results = []
    thread = threading.Thread(
        target=lambda: results.append(Retrier(ROW, budget=30).call(scripted(ConnectionError("a"), "v"), span)))
    thread.start()
    thread.join(10)
    assert results == ["v"]


def test_a_call_inside_the_worker_gets_the_rows_policy(clock, span):
    """On the worker's thread (inside ``flush_loop``) the row's policy applies: up to 5 attempts."""
    retrier = Retrier(ROW, budget=30, worker=Worker("flush_loop"), elsewhere=ELSEWHERE)
    fn = scripted(*[ConnectionError(str(i)) for i in range(4)], "value")
    assert Flusher().flush_loop(retrier, fn, span) == "value"
    assert [e["retry.max_attempts"] for e in retry_events(span)] == [5, 5, 5, 5]


def test_a_call_elsewhere_gets_the_elsewhere_policy(clock, span):
    """Outside the worker (the application's thread) the short ``elsewhere`` policy applies: 2 attempts."""
    retrier = Retrier(ROW, budget=30, worker=Worker("flush_loop"), elsewhere=ELSEWHERE)
    with pytest.raises(ConnectionError):
        retrier.call(scripted(*[ConnectionError(str(i)) for i in range(4)], "value"), span)
    assert [e["retry.max_attempts"] for e in retry_events(span)] == [2, 2]


def test_a_worker_row_without_an_elsewhere_policy_uses_its_own_everywhere(clock, span):
    """No ``elsewhere`` given: a call off the worker runs under the row's own policy (5 attempts)."""
    retrier = Retrier(ROW, budget=30, worker=Worker("flush_loop"))
    assert retrier.call(scripted(*[ConnectionError(str(i)) for i in range(4)], "value"), span) == "value"
    assert [e["retry.max_attempts"] for e in retry_events(span)] == [5, 5, 5, 5]


def test_a_workers_wait_is_slept_in_slices_that_add_up_to_it(clock, span):
    """The worker's 0.25 s wait is slept in slices of at most 0.1 s that add up to 0.25 s."""
    retrier = Retrier(Policy("short", 2, 0.25, 0.25), budget=30, worker=Worker("flush_loop"), elsewhere=ELSEWHERE)
    assert Flusher().flush_loop(retrier, scripted(ConnectionError("a"), "value"), span) == "value"
    assert len(clock.sleeps) == 3 and max(clock.sleeps) <= 0.1
    assert sum(clock.sleeps) == pytest.approx(0.25)


def test_stopping_the_worker_ends_its_wait_with_one_last_attempt(clock, span):
    """The worker stops during its 5 s wait: the wait ends after that slice, one last attempt, then give up."""
    flusher = Flusher()
    clock.hold = lambda: setattr(flusher, "running", False)
    retrier = Retrier(Policy("long", 5, 5.0, 5.0), budget=30, worker=Worker("flush_loop"), elsewhere=ELSEWHERE)
    last = ConnectionError("last")
    with pytest.raises(ConnectionError) as caught:
        flusher.flush_loop(retrier, scripted(ConnectionError("first"), last, "never"), span)
    assert caught.value is last
    assert clock.sleeps == [0.1]
    assert [e["retry.will_retry"] for e in retry_events(span)] == [True, False]


def test_a_worker_without_its_running_flag_counts_as_stopped(clock, span):
    """A worker object that has no ``running`` attribute keeps no wait alive: one last attempt, no sleep."""
    retrier = Retrier(Policy("long", 5, 5.0, 5.0), budget=30, worker=Worker("flush_loop"), elsewhere=ELSEWHERE)
    with pytest.raises(ConnectionError):
        Flusher(running=False).flush_loop(retrier, scripted(ConnectionError("a"), ConnectionError("b")), span)
    assert clock.sleeps == []
    assert span.attributes["retry.attempts"] == 2


def test_the_retry_loop_logs_nothing(clock, span, caplog):
    """Retries and a give-up add no line to the application's logging (backoff's own logger is off)."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConnectionError):
        Retrier(ROW, budget=30).call(scripted(*[ConnectionError(str(i)) for i in range(5)]), span)
    assert [r for r in caplog.records if r.name.startswith("backoff")] == []


def test_an_outcome_reader_that_raises_is_reported_under_its_place(span):
    """The outcome reader's own exception is counted as a 'retry outcome' failure (and re-raised in strict mode)."""
    boom = RuntimeError("reader broke")

    def outcome(result):
        raise boom

    with pytest.raises(RuntimeError) as caught:
        Retrier(ROW, budget=30, outcome=outcome).call(lambda: "value", span)
    assert caught.value is boom
    assert _guard.contained_failures() == {"retry outcome": 1}


def test_a_decision_event_names_the_outcomes_error_and_text(clock, span):
    """A swallowed result with nothing caught behind it: one final event with the outcome's type and text."""
    retrier = Retrier(ROW, budget=30, outcome=failed_if_false("not_ready", "store not initialized"))
    assert retrier.call(lambda: False, span) is False
    (event,) = retry_events(span)
    assert (event["error.type"], event["exception.message"]) == ("not_ready", "store not initialized")


def test_giving_up_on_a_swallowed_exception_records_it_on_the_span(clock, span):
    """A swallowed permanent error: the span's exception event is that exception (type and message)."""
    retrier = Retrier(ROW, budget=30, outcome=failed_if_false())
    assert retrier.call(swallowing(ValueError("bad uuid")), span) is False
    (exception,) = [dict(e.attributes) for e in span.events if e.name == "exception"]
    assert (exception["exception.type"], exception["exception.message"]) == ("ValueError", "bad uuid")


M = "retry_victims.services"
IN_WORKER = Target(M, "Reader.read", "victim.read",
                   invokers=(Retry("default", worker=Worker("flush_loop"), elsewhere="quick"),))


def test_a_rows_elsewhere_policy_applies_off_the_worker(instrument, telemetry):
    """A row with a worker: a call off the worker's thread runs under the row's ``elsewhere`` policy (as
    overridden by the settings), not the row's own."""
    instrument(IN_WORKER, retry_policies="default=5:0.001:0.002,quick=4:0.001:0.002")
    from retry_victims.services import Reader

    with pytest.raises(ConnectionError):
        Reader(*[ConnectionError(str(i)) for i in range(5)]).read()
    assert [e["retry.max_attempts"] for e in retry_events(telemetry.span("victim.read"))] == [4, 4, 4, 4]


def test_the_attempts_counter_names_the_rows_area(instrument, telemetry):
    """``crossbridge.retry.attempts`` carries the row's area."""
    instrument(Target(M, "Reader.read", "victim.read", invokers=(Retry("default"),)))
    from retry_victims.services import Reader

    assert Reader("value").read() == "value"
    assert attempts_by_outcome(telemetry, "victim.read") == {"ok": 1}
    (point,) = telemetry.metric_points("crossbridge.retry.attempts")
    assert point.attributes["area"] == "victim"
