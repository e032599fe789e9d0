"""Verdicts of crossbridge_otel.retry.transient for hosts that cannot be reached against servers that refuse."""

from __future__ import annotations

import socket

import httpx
import psycopg2
import pytest
import requests
import urllib3.exceptions

from crossbridge_otel.retry.transient import classify

# libpq's own texts (fe-connect.c) for a host it cannot resolve or route to: produced here without any lookup or
# packet (the loopback-only namespace allows neither), so the messages are libpq's, not made up.
_UNRESOLVED = 'could not translate host name "db.internal" to address: Name or service not known\n'
_NO_DNS = 'could not translate host name "db.internal" to address: Temporary failure in name resolution\n'
_UNREACHABLE = ('connection to server at "10.0.0.5", port 5432 failed: Network is unreachable\n'
                '\tIs the server running on that host and accepting TCP/IP connections?\n')
_NO_ROUTE = ('connection to server at "10.0.0.5", port 5432 failed: No route to host\n'
             '\tIs the server running on that host and accepting TCP/IP connections?\n')


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _refused() -> psycopg2.OperationalError:
    """The real exception psycopg2 raises for a port nothing listens on (127.0.0.1 only)."""
    try:
        psycopg2.connect(host="127.0.0.1", port=_closed_port(), dbname="x", user="x", connect_timeout=5)
    except psycopg2.OperationalError as exc:
        return exc
    raise AssertionError("a closed port accepted a connection")


def _name_resolution_error() -> urllib3.exceptions.NameResolutionError:
    reason = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return urllib3.exceptions.NameResolutionError("influx.internal", None, reason)  # type: ignore[arg-type]


def test_a_refused_connection_stays_transient_and_before_request():
    """A refused connect (what a restarting server answers) is retried, and known to precede any request."""
    verdict = classify(_refused())
    assert "refused" in str(_refused()).lower()
    assert verdict.transient and verdict.before_request


@pytest.mark.parametrize("text", [_UNRESOLVED, _UNREACHABLE, _NO_ROUTE])
def test_postgres_host_that_cannot_be_reached_is_not_retried(text):
    """libpq's unresolvable host name or unreachable network, though an OperationalError, is not transient."""
    verdict = classify(psycopg2.OperationalError(text))
    assert not verdict.transient
    assert verdict.reason == "host unresolvable or unreachable"


@pytest.mark.parametrize("exc", [
    socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    httpx.ConnectError("[Errno -2] Name or service not known"),
    requests.ConnectionError("HTTPConnectionPool(host='influx.internal', port=8086): Max retries exceeded "
                             "(Caused by NameResolutionError(\"Failed to resolve 'influx.internal'\"))"),
])
def test_http_host_that_does_not_resolve_is_not_retried(exc):
    """A name-resolution failure carried by any HTTP client's connection error is not transient."""
    assert not classify(exc).transient


def test_name_resolution_error_class_is_not_retried():
    """urllib3's NameResolutionError, a NewConnectionError subclass, is not transient whatever its text."""
    assert isinstance(_name_resolution_error(), urllib3.exceptions.NewConnectionError)
    assert not classify(_name_resolution_error()).transient


def test_unreachable_cause_under_a_generic_wrapper_is_not_retried():
    """A connection error whose cause is a resolution failure (its own text silent about it) is not transient."""
    wrapper = requests.ConnectionError("Max retries exceeded with url: /health")
    wrapper.__cause__ = _name_resolution_error()
    assert classify(requests.ConnectionError("Max retries exceeded with url: /health")).transient
    assert not classify(wrapper).transient


def test_temporary_resolver_failure_stays_transient():
    """libpq's EAI_AGAIN text (no resolver answered: a DNS blip) is still retried, as a refused connect is."""
    assert classify(psycopg2.OperationalError(_NO_DNS)).transient


def test_temporary_resolver_failure_under_a_wrapper_stays_transient():
    """A connection error caused by an EAI_AGAIN gaierror is retried, though a resolution failure caused it."""
    wrapper = httpx.ConnectError("[Errno -3] Temporary failure in name resolution")
    assert classify(wrapper).transient
    quiet = requests.ConnectionError("Max retries exceeded with url: /health")
    quiet.__cause__ = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    assert classify(quiet).transient


def test_http_connect_refused_stays_transient():
    """httpx's refused connect is still retried (only unreachable hosts are excluded)."""
    assert classify(httpx.ConnectError("[Errno 111] Connection refused")).transient
