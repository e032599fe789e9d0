"""HTTP fault injection on the real BitbucketConnector.read_file (the repo area's retried read, through the atlassian
client): 503 with Retry-After then 200 is retried after the server's delay, capped; 401/404 are not retried; a
refused connection is retried until the policy gives up. The fake Bitbucket (tests/support/fake_bitbucket.py) answers on
127.0.0.1 through the HTTPS proxy route; no name but loopback is resolved.
"""

from __future__ import annotations

import importlib
import socket

import pytest
import requests
from opentelemetry.trace import StatusCode
from support.fake_bitbucket import PREFIX, bitbucket  # noqa: F401  (bitbucket: a fixture)
from support.retry import attempts_by_outcome, retry_events

from crossbridge_otel.instrumentors.repo import RepoInstrumentor

READ_FILE = next(t for t in RepoInstrumentor.targets if t.qualname == "BitbucketConnector.read_file")
README = f"{PREFIX}/src/main/README.md"




def _read(path: str = "README.md"):
    from core.repo.bitbucket import BitbucketConnector

    return BitbucketConnector("acme", "demo", token="tok", username="svc").read_file(path)


def test_503_with_retry_after_is_retried_after_the_requested_delay(instrument, telemetry, bitbucket):
    """503 + Retry-After: 1 then the file: two GETs, the event's delay is the server's 1 s."""
    instrument(READ_FILE, area="repo", retry_policies="quick=3:0.001:2")
    bitbucket.fail_next("GET", README, 503, headers={"Retry-After": "1"})
    assert _read() == "# demo\n"
    assert bitbucket.paths("GET") == [README, README]
    span = telemetry.span("repo.read_file")
    (event,) = retry_events(span)
    assert event["error.type"] == "requests.exceptions.HTTPError"
    assert event["retry.delay_s"] == 1.0
    assert span.attributes["retry.attempts"] == 2
    assert span.status.status_code != StatusCode.ERROR
    assert attempts_by_outcome(telemetry, "repo.read_file") == {"retried": 1, "ok": 1}


def test_retry_after_longer_than_the_cap_is_capped(instrument, telemetry, bitbucket):
    """A Retry-After above the policy cap waits the cap, never longer."""
    instrument(READ_FILE, area="repo", retry_policies="quick=3:0.001:0.05")
    bitbucket.fail_next("GET", README, 503, headers={"Retry-After": "120"})
    assert _read() == "# demo\n"
    (event,) = retry_events(telemetry.span("repo.read_file"))
    assert event["retry.delay_s"] == 0.05


@pytest.mark.parametrize(("status", "raised"), [
    (401, "requests.exceptions.HTTPError"),
    (404, "core.repo.base.FileNotFoundError"),  # a plain-text 404 has "404" in requests' text: CrossBridge maps it
])
def test_permanent_http_errors_are_one_attempt(instrument, telemetry, bitbucket, status, raised):
    """401 and 404 are not retried: one request, one final retry event, ERROR span, CrossBridge's exception."""
    instrument(READ_FILE, area="repo")
    bitbucket.fail_next("GET", README, status)
    module, _, name = raised.rpartition(".")
    expected = getattr(importlib.import_module(module), name)
    with pytest.raises(expected) as caught:
        _read()
    assert type(caught.value) is expected
    assert bitbucket.paths("GET") == [README]
    span = telemetry.span("repo.read_file")
    assert span.attributes["error.type"] == raised
    (event,) = retry_events(span)
    assert event["retry.will_retry"] is False
    assert span.attributes["retry.attempts"] == 1
    assert span.status.status_code == StatusCode.ERROR
    assert attempts_by_outcome(telemetry, "repo.read_file") == {"failed": 1}


def test_connection_refused_is_retried_then_gives_up(instrument, telemetry, bitbucket, monkeypatch):
    """Nothing listening where the route goes: every attempt refused, the last ConnectionError re-raised."""
    instrument(READ_FILE, area="repo", retry_policies="quick=3:0.001:0.002")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("https_proxy", closed)
    monkeypatch.setenv("HTTPS_PROXY", closed)
    with pytest.raises(requests.exceptions.ConnectionError):
        _read()
    events = retry_events(telemetry.span("repo.read_file"))
    assert [e["retry.will_retry"] for e in events] == [True, True, False]
    assert bitbucket.requests == []
