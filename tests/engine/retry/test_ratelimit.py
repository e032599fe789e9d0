"""The token-bucket invoker: waits recorded as rate_limit.wait events; unconfigured keys cost nothing."""

from __future__ import annotations

import time
import types

import pytest
from support.retry import retry_events

from crossbridge_otel.patching.targets import Target
from crossbridge_otel.retry import ratelimit
from crossbridge_otel.retry.invoker import Retry
from crossbridge_otel.retry.ratelimit import RateLimit, TokenBucket, parse_rate_limits, reset_buckets

M = "retry_victims.services"


@pytest.fixture(autouse=True)
def fresh_buckets():
    """Every test starts with no buckets."""
    reset_buckets()
    yield
    reset_buckets()


def test_parse_rate_limits_skips_bad_entries():
    """key=capacity/seconds entries are parsed; malformed ones are skipped."""
    assert parse_rate_limits("translation=10/60, execution=4/1,bad=x/1,zero=0/1") == {
        "translation": (10, 60.0), "execution": (4, 1.0)}


@pytest.fixture
def frozen_clock(monkeypatch):
    """The buckets' monotonic clock stands still (sleeps are real): waits are exact, whatever the load."""
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(monotonic=lambda: 1000.0, sleep=time.sleep))


def test_bucket_waits_only_when_empty(frozen_clock):
    """Capacity 2 per second: two free tokens, then the third waits exactly half a second of refill."""
    limiter = TokenBucket(2, 1.0)
    assert limiter.reserve() == 0.0 and limiter.reserve() == 0.0
    assert limiter.reserve() == pytest.approx(0.5)


def test_waits_are_span_events(frozen_clock, instrument, telemetry):
    """The call beyond the bucket's capacity waits and records rate_limit.wait with key and seconds."""
    instrument(Target(M, "Reader.read", "victim.read", invokers=(RateLimit("translation"),)),
               rate_limits="translation=2/0.2")
    from retry_victims.services import Reader

    reader = Reader()
    for _ in range(3):
        reader.read()
    waits = [[dict(e.attributes) for e in s.events if e.name == "rate_limit.wait"]
             for s in telemetry.spans("victim.read")]
    assert waits[:2] == [[], []]
    (wait,) = waits[2]
    assert wait["rate_limit.key"] == "translation"
    assert wait["rate_limit.wait_s"] == pytest.approx(0.1)  # 2 tokens per 0.2 s: half the window


def test_unconfigured_key_is_a_plain_call(instrument, telemetry):
    """Without a bucket for the key there is no invoker: no wait events, whatever the call rate."""
    instrument(Target(M, "Reader.read", "victim.read", invokers=(RateLimit("translation"),)))
    from retry_victims.services import Reader

    for _ in range(5):
        Reader().read()
    assert all(not s.events for s in telemetry.spans("victim.read"))


def test_rate_limit_composes_with_retry(instrument, telemetry):
    """invokers=(RateLimit(...), Retry(...)) takes one token per call and still retries transient failures."""
    instrument(Target(M, "Reader.read", "victim.read", invokers=(RateLimit("translation"), Retry("default"))),
               rate_limits="translation=5/1")
    from retry_victims.services import Reader

    assert Reader(ConnectionError("x"), "value").read() == "value"
    assert len(retry_events(telemetry.span("victim.read"))) == 1
