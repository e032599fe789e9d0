"""The OTLP/HTTP span exporter (``export.otlp_http``): a large batch as several requests; its requests session."""

from __future__ import annotations

import os

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.otlp_sink import OtlpSink

from crossbridge_otel.export import otlp_http
from crossbridge_otel.export.encoding import encode_spans
from crossbridge_otel.export.otlp_http import FastOTLPSpanExporter


def _batch(count: int) -> list:
    kept = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "split"}))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("split")
    for index in range(count):
        with tracer.start_as_current_span(f"span {index}", attributes={"index": index, "text": "x" * 50}):
            pass
    return list(kept.get_finished_spans())


def test_a_batch_over_the_request_limit_arrives_as_several_requests_each_span_once():
    """Encoded larger than request_limit, a batch goes out in requests under the limit, every span exactly once."""
    batch = _batch(40)
    with OtlpSink() as sink:
        exporter = FastOTLPSpanExporter(endpoint=f"{sink.endpoint}/v1/traces")
        exporter.request_limit = len(encode_spans(batch)) // 5
        assert exporter.export(batch) is SpanExportResult.SUCCESS
        exporter.shutdown()
        received = [span.span_id for _, span in sink.spans()]
        sizes = [request.ByteSize() for request in sink.traces]
    assert sorted(received) == sorted(s.context.span_id.to_bytes(8, "big") for s in batch)
    assert len(sizes) > 1 and max(sizes) <= exporter.request_limit
    assert exporter.sent_before_failing == 0


def test_a_failed_request_says_how_many_spans_went_out_before_it():
    """Requests go out in order; when one fails (a span over max_request_size), sent_before_failing counts the
    spans the earlier requests delivered."""
    batch = _batch(4)
    huge = InMemorySpanExporter()
    provider = TracerProvider(resource=batch[0].resource)
    provider.add_span_processor(SimpleSpanProcessor(huge))
    with provider.get_tracer("split").start_as_current_span("huge", attributes={"text": "x" * 5000}):
        pass
    batch += huge.get_finished_spans()
    with OtlpSink() as sink:
        exporter = FastOTLPSpanExporter(endpoint=f"{sink.endpoint}/v1/traces", max_request_size=3000)
        exporter.request_limit = 2000
        assert exporter.export(batch) is SpanExportResult.FAILURE
        exporter.shutdown()
        received = len(sink.spans())
    assert received == 4 and exporter.sent_before_failing == 4


def _no_requests_environment(monkeypatch, home) -> None:
    for key in list(os.environ):
        if key.lower().endswith("_proxy") or key in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))


def test_with_nothing_for_requests_in_the_environment_the_session_skips_it(monkeypatch, tmp_path):
    """No proxy variable, CA bundle or netrc: the exporter's session does not look them up at every request."""
    _no_requests_environment(monkeypatch, tmp_path)
    session = otlp_http._plain_session()
    assert session is not None and session.trust_env is False
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login user password secret\n")
    assert otlp_http._plain_session() is None  # a netrc file: requests' own handling stays


def test_a_ca_bundle_variable_is_honoured_as_a_trusting_session_does(monkeypatch, tmp_path):
    """With REQUESTS_CA_BUNDLE set (no proxy, no netrc), the plain session still verifies with that bundle, per
    request, and its settings for a request equal those of requests' own trusting Session."""
    import requests

    _no_requests_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "first.pem"))
    session = otlp_http._plain_session()
    assert session is not None and session.trust_env is False
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "second.pem"))  # read per request, as requests does
    url = "https://collector.example:4318/v1/traces"
    ours = session.merge_environment_settings(url, {}, None, True, None)
    assert ours["verify"] == str(tmp_path / "second.pem")
    assert ours == requests.Session().merge_environment_settings(url, {}, None, True, None)


def test_a_proxy_variable_keeps_requests_environment_handling(monkeypatch, tmp_path):
    """With http_proxy set, the exporter's request goes through the proxy, as the SDK's exporter's does."""
    _no_requests_environment(monkeypatch, tmp_path)
    with OtlpSink() as collector, OtlpSink() as proxy:
        monkeypatch.setenv("http_proxy", proxy.endpoint)
        exporter = FastOTLPSpanExporter(endpoint=f"{collector.endpoint}/v1/traces")
        exporter.export(_batch(1))
        exporter.shutdown()
        assert (proxy.requests, collector.requests) == (1, 0)
