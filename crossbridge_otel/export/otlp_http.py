"""The OTLP/HTTP span exporter: the SDK's, with :mod:`crossbridge_otel.export.encoding` as its encoder.

Imported on the export worker when the exporter is built (it imports requests and protobuf), never at start-up.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import requests
from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError, _is_request_too_large
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

from crossbridge_otel.export.encoding import encode_spans

__all__ = ["REQUEST_LIMIT", "FastOTLPSpanExporter"]

_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")  # the exporter's messages

# One request's encoded size at most: a collector's gRPC receiver refuses more than 4 MiB by default (its HTTP
# receiver 20 MiB), and a refused request loses every span in it. Our queue hands this exporter batches of up to
# export.pipeline.OTLP_HTTP_SPAN_BATCH spans (fewer requests: much of an export's HTTP cost is per request); a batch
# that encodes larger than REQUEST_LIMIT goes out as several requests.
REQUEST_LIMIT = 4 * 1024 * 1024


def _requests(spans: Sequence[ReadableSpan], data: bytes, limit: int) -> list[tuple[Sequence[ReadableSpan], bytes]]:
    """``spans`` (encoded as ``data``) as requests of at most ``limit`` bytes, halving until each fits (a single
    span larger than the limit goes alone: the exporter's own size check decides about it)."""
    if len(data) <= limit or len(spans) < 2:
        return [(spans, data)]
    half = len(spans) // 2
    first, second = spans[:half], spans[half:]
    return _requests(first, encode_spans(first), limit) + _requests(second, encode_spans(second), limit)


# What requests reads from the environment for each request of a Session that trusts it (trust_env, the default):
# proxy variables (any *_proxy, any case), a CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE), a netrc file (NETRC,
# ~/.netrc); and what makes the SDK exporter build its session itself (a credential provider).
_NETRC_FILES = ("~/.netrc", "~/_netrc")


class _PlainSession(requests.Session):
    """A Session that does not trust the environment, except for the CA bundle, read per request as requests does
    (two lookups: a trusting Session's proxy search decodes every variable twice, and it looks for a netrc file)."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        if verify is True or verify is None:  # (requests' own rule for a trusting Session)
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
        return super().merge_environment_settings(url, proxies, stream, verify, cert)


def _plain_session() -> Any:
    """A requests Session that does not look for proxies or a netrc file at every request, when the environment
    holds neither (a CA bundle variable is still honoured, per request); else None (the SDK's own session).

    Per request, a trusting Session decodes every environment variable twice looking for proxies and looks for a
    netrc file: about half the CPU of an OTLP/HTTP request to a local collector, for nothing when none is set.
    """
    environ = os.environ
    if any(key.lower().endswith("_proxy") or "CREDENTIAL_PROVIDER" in key.upper() for key in environ):
        return None
    if environ.get("NETRC") or any(os.path.exists(os.path.expanduser(name)) for name in _NETRC_FILES):
        return None
    return _PlainSession()


class FastOTLPSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/HTTP span exporter (same settings, HTTP client and session, retries, size limit, metrics and
    messages), with :func:`encode_spans` as its encoder. Its ``export`` is the SDK's with the encoder swapped;
    on an SDK without the parts it relies on, it is the SDK's ``export`` unchanged.

    A batch larger than :data:`REQUEST_LIMIT` encoded goes out as several requests, in order, stopping at the first
    that fails; :attr:`sent_before_failing` then says how many spans went out before it (the queue counts them as
    exported, the rest as dropped).

    Built without a ``session``, it uses one that skips requests' per-request proxy and netrc lookups when there is
    nothing in the environment for them to find (:func:`_plain_session`): same requests, half the CPU each."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("session") is None and len(args) < 8:  # (session is the eighth positional parameter)
            kwargs["session"] = _plain_session()
        super().__init__(*args, **kwargs)
        self._fast = all(hasattr(self, name) for name in ("_shutdown", "_metrics", "_max_request_size", "_client"))
        self.request_limit = REQUEST_LIMIT
        self.sent_before_failing = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.sent_before_failing = 0
        if not self._fast:
            return super().export(spans)
        if self._shutdown:
            _logger.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
        try:
            data = encode_spans(spans)
        except Exception as error:
            with self._metrics.export_operation(len(spans)) as result:
                _logger.error("Failed to encode span batch: %s", error)
                result.error = error
            return SpanExportResult.FAILURE
        for part, part_data in _requests(spans, data, self.request_limit):
            if self._send(part, part_data) is not SpanExportResult.SUCCESS:
                return SpanExportResult.FAILURE
            self.sent_before_failing += len(part)
        self.sent_before_failing = 0
        return SpanExportResult.SUCCESS

    def _send(self, spans: Sequence[ReadableSpan], data: bytes) -> SpanExportResult:
        with self._metrics.export_operation(len(spans)) as result:
            if _is_request_too_large(data, self._max_request_size):
                _logger.warning("Dropping span batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                                len(data), self._max_request_size)
                result.error = RequestPayloadTooLargeError(
                    f"Serialized span request size {len(data)} bytes exceeds max_request_size "
                    f"{self._max_request_size} bytes.")
                return SpanExportResult.FAILURE
            export_result = self._client.export(data)
            if not export_result.success:
                result.error = export_result.error
                result.error_attrs = ({HTTP_RESPONSE_STATUS_CODE: export_result.status_code}
                                      if export_result.status_code is not None else None)
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
