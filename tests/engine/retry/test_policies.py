"""Named policies, their overrides, capped full jitter and the transient verdicts."""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET

import psycopg2
import psycopg2.errors
import pytest
import requests

from crossbridge_otel.retry.policies import DEFAULT_POLICIES, capped_delay, parse_policies, policy_named
from crossbridge_otel.retry.transient import classify


def test_default_policies_match_crossbridge():
    """quick 2x0.1 cap 1, default 3x0.5 cap 5, expensive 5x1 cap 10, conservative 3x2 cap 30 base 3."""
    table = {n: (p.attempts, p.base, p.cap, p.exp_base) for n, p in DEFAULT_POLICIES.items()}
    assert table == {"quick": (2, 0.1, 1.0, 2.0), "default": (3, 0.5, 5.0, 2.0),
                     "expensive": (5, 1.0, 10.0, 2.0), "conservative": (3, 2.0, 30.0, 3.0)}


def test_overrides_replace_and_add_policies_and_skip_bad_entries():
    """name=attempts:base:cap[:exp] overrides; a malformed entry is ignored, the rest applies."""
    policies = parse_policies("quick=4:0.2:2,bulk=6:1:8:3,broken=x:1")
    assert (policies["quick"].attempts, policies["quick"].cap) == (4, 2.0)
    assert policies["bulk"].exp_base == 3.0
    assert "broken" not in policies
    assert policy_named("standard").name == "default"


@pytest.mark.parametrize("name", sorted(DEFAULT_POLICIES))
def test_jittered_delay_never_exceeds_the_cap(name):
    """Full jitter is drawn under min(cap, base*exp**n): even the largest draw is at most the cap."""
    policy = DEFAULT_POLICIES[name]
    for failed in range(1, 12):
        assert 0.0 <= capped_delay(policy, failed, uniform=0.999999) <= policy.cap
        assert capped_delay(policy, failed) <= policy.cap


def test_retry_after_is_honoured_but_capped():
    """Retry-After replaces the jittered delay and is capped by the policy."""
    policy = DEFAULT_POLICIES["default"]
    assert capped_delay(policy, 1, retry_after=2.0) == 2.0
    assert capped_delay(policy, 1, retry_after=600.0) == policy.cap


@pytest.mark.parametrize("exc", [
    psycopg2.OperationalError("server closed the connection unexpectedly"),
    psycopg2.InterfaceError("connection already closed"),
    psycopg2.errors.AdminShutdown("terminating connection due to administrator command"),
    sqlite3.OperationalError("database is locked"),
    requests.ConnectionError("refused"),
    requests.Timeout("read timed out"),
    ConnectionResetError("reset"),
    TimeoutError("slow"),
])
def test_transient_failures(exc):
    """Connection losses, server restarts, locks and timeouts are transient."""
    assert classify(exc).transient


@pytest.mark.parametrize("exc", [
    psycopg2.IntegrityError("duplicate key"),
    psycopg2.ProgrammingError("syntax error"),
    psycopg2.DataError("invalid input syntax for type uuid"),
    psycopg2.OperationalError('FATAL:  password authentication failed for user "x"'),
    sqlite3.OperationalError("no such table: t"),
    ET.ParseError("not well-formed"),
    json.JSONDecodeError("Expecting value", "", 0),
    RuntimeError("boom"),
])
def test_permanent_failures(exc):
    """Integrity, programming, data, parse and authentication errors are never retried."""
    assert not classify(exc).transient


@pytest.mark.parametrize(("status", "transient"), [(429, True), (500, True), (503, True), (501, False),
                                                   (400, False), (401, False), (403, False), (404, False)])
def test_http_status_verdicts(status, transient):
    """HTTP 429 and 5xx (not 501) are transient; other 4xx are not."""
    response = requests.Response()
    response.status_code = status
    assert classify(requests.HTTPError(f"{status}", response=response)).transient is transient
