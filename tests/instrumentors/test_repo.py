"""Repo area: the real BitbucketConnector against a fake Bitbucket Cloud on 127.0.0.1 (tests/support/fake_bitbucket.py).

The connector talks to https://api.bitbucket.org as it always does; the test routes that name through an HTTPS
proxy on 127.0.0.1 that answers as Bitbucket (see fake_bitbucket), and refuses to resolve any other name.
"""

from __future__ import annotations

import base64
import types

import pytest
import requests
from opentelemetry.trace import SpanKind, StatusCode
from support.fake_bitbucket import PREFIX, SERVER_PREFIX, bitbucket  # noqa: F401  (bitbucket: a fixture)
from support.spans import children, retry_events

from crossbridge_otel import libraries
from crossbridge_otel.instrumentors.repo import READS, WRITES, RepoInstrumentor

P = "crossbridge.repo."
TOKEN, USER, REPO_TOKEN = "tok-9f8e7d6c5b", "svc-user-4711", "repotok-0a1b2c3d"


@pytest.fixture
def repo(instrument):
    return instrument(RepoInstrumentor)


@pytest.fixture
def http(telemetry):
    done = libraries.instrument(["requests"], tracer_provider=telemetry.tracer_provider)
    yield
    libraries.uninstrument(done)




@pytest.fixture
def sleeps(monkeypatch):
    """The seconds CrossBridge's PR loop asks to sleep (60, 120), returned at once instead of slept."""
    import core.repo.bitbucket as module

    asked: list[float] = []
    monkeypatch.setattr(module, "time", types.SimpleNamespace(sleep=asked.append))
    return asked


def _connector(**kw):
    from core.repo.bitbucket import BitbucketConnector

    kw.setdefault("username", USER)
    return BitbucketConnector("acme", "demo", token=kw.pop("token", TOKEN), **kw)


def _exported_text(telemetry) -> str:
    parts = []
    for s in telemetry.spans():
        parts += [s.name, str(s.status.description)]
        parts += [str(v) for v in s.attributes.values()]
        parts += [f"{e.name} {v}" for e in s.events for v in e.attributes.values()]
    return "\n".join(parts)


def _client_spans(telemetry):
    return [s for s in telemetry.spans() if s.kind == SpanKind.CLIENT]


def test_read_file_span_has_the_http_client_span_as_child(repo, http, telemetry, bitbucket):
    """read_file: a repo.read_file span with path/branch/bytes, and the requests GET as its child."""
    content = _connector().read_file("src/LoginTest.java", branch="main")
    span = telemetry.span("repo.read_file")
    a = span.attributes
    assert (a[P + "provider"], a[P + "owner"], a[P + "name"], a[P + "cloud"]) == ("bitbucket", "acme", "demo", True)
    assert a[P + "path"] == "src/LoginTest.java" and a[P + "branch"] == "main"
    assert a[P + "bytes"] == len(content) > 0
    assert a["crossbridge.category"] == "governance"
    (get,) = _client_spans(telemetry)
    assert get.parent.span_id == span.context.span_id
    url = get.attributes.get("url.full") or get.attributes["http.url"]  # new or old HTTP semantic conventions
    assert url == f"https://api.bitbucket.org{PREFIX}/src/main/src/LoginTest.java"


def test_list_all_files_requests_nest_under_its_span(repo, http, telemetry, bitbucket):
    """list_all_files walks directories with requests.get on the hard-coded Cloud URL: every GET is its child."""
    files = _connector().list_all_files()
    span = telemetry.span("repo.list_all_files")
    assert span.attributes[P + "items"] == len(files) == 2
    gets = _client_spans(telemetry)
    assert len(gets) == 2 and children(telemetry.spans(), span) == gets


def test_missing_file_is_recorded_and_reraised(repo, telemetry, bitbucket):
    """A 404 reaches CrossBridge as requests.HTTPError (no "404" in its text): recorded, re-raised, not retried."""
    with pytest.raises(requests.exceptions.HTTPError) as raised:
        _connector().read_file("nope.txt")
    assert type(raised.value) is requests.exceptions.HTTPError
    assert raised.value.response.status_code == 404 and str(raised.value) == "No such file or directory: nope.txt"
    span = telemetry.span("repo.read_file")
    assert span.attributes["error.type"] == "requests.exceptions.HTTPError"
    assert span.status.status_code == StatusCode.ERROR
    assert bitbucket.paths("GET") == [f"{PREFIX}/src/main/nope.txt"]
    assert [e.attributes["retry.will_retry"] for e in retry_events(span)] == [False]


def test_file_exists_raises_on_a_missing_file_as_crossbridge_does(repo, telemetry, bitbucket):
    """file_exists only catches CrossBridge's FileNotFoundError, so it raises HTTPError: we change nothing."""
    with pytest.raises(requests.exceptions.HTTPError):
        _connector().file_exists("nope.txt")
    outer = telemetry.span("repo.file_exists")
    assert outer.attributes["error.type"] == "requests.exceptions.HTTPError"
    assert children(telemetry.spans(), outer) == [telemetry.span("repo.read_file")]


def test_read_file_503_is_retried_by_the_quick_policy(repo, telemetry, bitbucket):
    """One 503 then the file: two GETs, one retry event, retry.attempts 2, the span not an error."""
    bitbucket.fail_next("GET", f"{PREFIX}/src/main/README.md", 503)
    assert _connector().read_file("README.md") == "# demo\n"
    assert len(bitbucket.paths("GET")) == 2
    span = telemetry.span("repo.read_file")
    (event,) = retry_events(span)
    assert event.attributes["retry.will_retry"] is True and event.attributes["error.type"].endswith("HTTPError")
    assert span.attributes["retry.attempts"] == 2 and span.status.status_code != StatusCode.ERROR


def test_pull_request_429_retries_are_retry_events(repo, http, telemetry, bitbucket, sleeps):
    """create_pull_request after one 429: one retry event (will_retry), retry.attempts 2, PR number kept."""
    bitbucket.pr_429 = 1
    connector = _connector()
    pr = connector.create_pull_request("t", "b", "feature")
    assert sleeps == [60]  # CrossBridge's own backoff, asked once
    span = telemetry.span("repo.create_pull_request")
    (event,) = retry_events(span)
    assert event.attributes["retry.will_retry"] is True and "429" in event.attributes["exception.message"]
    assert span.attributes["retry.attempts"] == 2 and span.attributes[P + "pr_number"] == pr.number == 7
    posts = _client_spans(telemetry)
    assert len(posts) == 2 and all(p.parent.span_id == span.context.span_id for p in posts)
    assert "post" not in vars(connector.client), "the client's post is restored"


def test_pull_request_never_retried_by_us(repo, telemetry, bitbucket, sleeps):
    """Five 429s queued: CrossBridge gives up after its own 3 tries with a plain Exception; we add no request."""
    bitbucket.pr_429 = 5
    with pytest.raises(Exception, match="^Failed to create pull request: 429 Client Error") as raised:
        _connector().create_pull_request("t", "b", "feature")
    assert type(raised.value) is Exception
    assert type(raised.value.__context__) is requests.exceptions.HTTPError
    assert bitbucket.paths("POST") == [f"{PREFIX}/pullrequests"] * 3 and sleeps == [60, 120]
    span = telemetry.span("repo.create_pull_request")
    assert [e.attributes["retry.will_retry"] for e in retry_events(span)] == [True, True, False]
    assert span.attributes["error.type"] == "Exception" and span.attributes["retry.attempts"] == 3


def test_token_in_a_failing_url_never_leaves_the_process(repo, http, telemetry, bitbucket):
    """A Bitbucket Server URL carrying user:token answers 500: the error text has the token, no export does."""
    from core.repo.bitbucket import BitbucketConnector

    port = bitbucket.proxy_url.rsplit(":", 1)[1]
    connector = BitbucketConnector("PROJ", "demo", token=TOKEN, is_cloud=False,
                                   url=f"http://{USER}:{TOKEN}@127.0.0.1:{port}")
    bitbucket.fail_next("GET", f"{SERVER_PREFIX}/raw/boom.txt", 500, 500)
    with pytest.raises(requests.exceptions.HTTPError) as raised:
        connector.read_file("boom.txt")
    assert TOKEN in str(raised.value)  # the failing input really carries it
    assert len(bitbucket.paths("GET")) == 2  # 5xx: retried once by the quick policy
    span = telemetry.span("repo.read_file")
    assert span.attributes["error.type"] == "requests.exceptions.HTTPError"
    assert len(retry_events(span)) == 2 and len(_client_spans(telemetry)) == 2
    text = _exported_text(telemetry)
    assert "500 Server Error" in text and "127.0.0.1" in text
    assert TOKEN not in text


def test_authorization_headers_never_leave_the_process(repo, telemetry, bitbucket, monkeypatch):
    """Basic and Bearer credentials reach the server, failing calls included; captured headers are masked."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", ".*")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS",
                       libraries.ENV_DEFAULTS["OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"])
    done = libraries.instrument(["requests"], tracer_provider=telemetry.tracer_provider)
    try:
        _connector().list_all_files()
        _connector().create_branch("feature")
        bitbucket.fail_next("POST", f"{PREFIX}/src", 500)
        with pytest.raises(Exception, match="^Failed to write file: 500") as raised:
            _connector().write_file("a.txt", "x", "msg", branch="feature")
        assert type(raised.value) is Exception
        _connector(token=REPO_TOKEN, username=None, use_repo_token=True).read_file("README.md")
    finally:
        libraries.uninstrument(done)
    sent = [h.get("Authorization", "") for m, _, h in bitbucket.requests if m != "CONNECT"]
    basic = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
    assert basic in sent and f"Bearer {REPO_TOKEN}" in sent
    captured = [s.attributes["http.request.header.authorization"] for s in _client_spans(telemetry)]
    assert len(captured) == len(sent) and all(value == ("[REDACTED]",) for value in captured)
    text = _exported_text(telemetry)
    for secret in (TOKEN, USER, REPO_TOKEN, basic.split()[1]):
        assert secret not in text


def test_connect_records_crossbridge_github_bug(repo, telemetry):
    """translate_repo_to_connector for github.com: the TypeError ('org') recorded on repo.connect."""
    from core.repo.repo_translator import translate_repo_to_connector

    with pytest.raises(TypeError, match="org"):
        translate_repo_to_connector("https://github.com/octo/demo", TOKEN)
    span = telemetry.span("repo.connect")
    assert span.attributes[P + "host"] == "github.com" and span.attributes["error.type"] == "TypeError"


def test_connect_exports_the_host_not_the_url_userinfo(repo, telemetry):
    """A Bitbucket clone URL with x-token-auth:<token>@: repo.connect has the host and connector, no token."""
    from core.repo.repo_translator import translate_repo_to_connector

    connector = translate_repo_to_connector(f"https://x-token-auth:{TOKEN}@bitbucket.org/acme/demo", TOKEN,
                                            base_branch="main", username=USER)
    span = telemetry.span("repo.connect")
    assert span.attributes[P + "host"] == "bitbucket.org"
    assert span.attributes[P + "connector"] == type(connector).__name__ == "BitbucketConnector"
    assert TOKEN not in _exported_text(telemetry)


def test_every_public_method_is_a_target(repo):
    """Every public BitbucketConnector method is patched; reads and writes are disjoint."""
    from crossbridge_otel.patching import status

    patched = {s.qualname for s in status.snapshot() if s.area == "repo" and s.state.value == "patched"}
    from core.repo.bitbucket import BitbucketConnector

    public = {f"BitbucketConnector.{n}" for n, v in vars(BitbucketConnector).items()
              if callable(v) and not n.startswith("_")}
    assert public <= patched
    assert not set(READS) & set(WRITES)
