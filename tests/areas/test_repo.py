"""Repo area: Bitbucket connector spans, requests spans nested under them, credentials never exported."""

from __future__ import annotations

import pytest
from areas_helpers import retry_events
from opentelemetry.trace import SpanKind, StatusCode

from crossbridge_otel import libraries
from crossbridge_otel.instrumentors.repo import READS, WRITES, RepoInstrumentor

P = "crossbridge.repo."
TOKEN, USER = "tok-9f8e7d6c5b", "svc-user-4711"


@pytest.fixture
def repo(instrument):
    return instrument(RepoInstrumentor)


@pytest.fixture
def http(telemetry):
    done = libraries.instrument(["requests"], tracer_provider=telemetry.tracer_provider)
    yield
    libraries.uninstrument(done)


def _connector(**kw):
    from core.repo.bitbucket import BitbucketConnector

    return BitbucketConnector("acme", "demo", token=TOKEN, username=USER, **kw)


def _exported_text(telemetry) -> str:
    parts = []
    for s in telemetry.spans():
        parts += [str(v) for v in s.attributes.values()]
        parts += [str(v) for e in s.events for v in e.attributes.values()]
        parts.append(str(s.status.description))
    return "\n".join(parts)


def test_read_file_span_has_the_http_client_span_as_child(repo, http, telemetry, fake_bitbucket):
    """read_file: a repo.read_file span with path/branch/bytes, and the requests GET as its child."""
    content = _connector().read_file("src/LoginTest.java")
    span = telemetry.span("repo.read_file")
    a = span.attributes
    assert (a[P + "provider"], a[P + "owner"], a[P + "name"]) == ("bitbucket", "acme", "demo")
    assert a[P + "path"] == "src/LoginTest.java" and a[P + "bytes"] == len(content)
    assert a["crossbridge.category"] == "governance"
    gets = [s for s in telemetry.spans() if s.kind == SpanKind.CLIENT]
    assert len(gets) == 1 and gets[0].parent.span_id == span.context.span_id


def test_missing_file_is_recorded_and_reraised(repo, telemetry, fake_bitbucket):
    """A 404 is CrossBridge's own FileNotFoundError: recorded on the span, the same exception re-raised."""
    from core.repo.base import FileNotFoundError as RepoFileNotFound

    with pytest.raises(RepoFileNotFound):
        _connector().read_file("nope.txt")
    span = telemetry.span("repo.read_file")
    assert span.attributes["error.type"] == "core.repo.base.FileNotFoundError"
    assert span.status.status_code == StatusCode.ERROR


def test_pull_request_429_retries_are_retry_events(repo, http, telemetry, fake_bitbucket):
    """create_pull_request after one 429: one retry event (will_retry), retry.attempts 2, PR number kept."""
    _, state = fake_bitbucket
    state.pr_429 = 1
    pr = _connector().create_pull_request("t", "b", "feature")
    span = telemetry.span("repo.create_pull_request")
    events = retry_events(span)
    assert len(events) == 1 and events[0].attributes["retry.will_retry"] is True
    assert "429" in events[0].attributes["exception.message"]
    assert span.attributes["retry.attempts"] == 2 and span.attributes[P + "pr_number"] == pr.number == 7
    posts = [s for s in telemetry.spans() if s.kind == SpanKind.CLIENT]
    assert len(posts) == 2 and all(p.parent.span_id == span.context.span_id for p in posts)
    assert "_post" not in vars(_connector())


def test_pull_request_never_retried_by_us(repo, telemetry, fake_bitbucket):
    """Three 429s: CrossBridge gives up after its own 3 tries; we made no extra request."""
    _, state = fake_bitbucket
    state.pr_429 = 5
    with pytest.raises(Exception, match="Failed to create pull request"):
        _connector().create_pull_request("t", "b", "feature")
    assert sum(1 for r in state.requests if r[1].endswith("/pullrequests")) == 3
    span = telemetry.span("repo.create_pull_request")
    assert [e.attributes["retry.will_retry"] for e in retry_events(span)] == [True, True, False]
    assert span.attributes["error.type"] == "Exception"


def test_credentials_never_exported(repo, http, telemetry, fake_bitbucket):
    """Basic and Bearer credentials reach the server but appear in no exported attribute, event or status."""
    _, state = fake_bitbucket
    _connector().list_all_files()
    _connector().create_branch("feature")
    _connector(use_repo_token=True).write_file("a.txt", "x", "msg", branch="feature")
    assert any("Authorization" in h for _, _, h in state.requests)
    text = _exported_text(telemetry)
    assert TOKEN not in text and USER not in text
    assert len(telemetry.spans("repo.list_files")) >= 2  # list_all_files walks directories


def test_connect_records_crossbridge_github_bug(repo, telemetry):
    """translate_repo_to_connector for github.com: the TypeError ('org') recorded on repo.connect."""
    from core.repo.repo_translator import translate_repo_to_connector

    with pytest.raises(TypeError, match="org"):
        translate_repo_to_connector("https://github.com/octo/demo", TOKEN)
    span = telemetry.span("repo.connect")
    assert span.attributes[P + "host"] == "github.com" and span.attributes["error.type"] == "TypeError"


def test_every_public_method_is_a_target(repo):
    """Every public BitbucketConnector method is patched; reads and writes are disjoint."""
    from crossbridge_otel import status

    patched = {s.qualname for s in status.snapshot() if s.area == "repo" and s.state.value == "patched"}
    from core.repo.bitbucket import BitbucketConnector

    public = {f"BitbucketConnector.{n}" for n, v in vars(BitbucketConnector).items()
              if callable(v) and not n.startswith("_")}
    assert public <= patched
    assert not set(READS) & set(WRITES)
