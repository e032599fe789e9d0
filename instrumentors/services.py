"""Services instrumentation: ``services.logging_service``, the sidecar API and the remote sidecar client.

Enabled under ``opentelemetry-instrument`` as ``crossbridge_services``,
its name in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``; in code::

    from crossbridge_otel.instrumentors.services import ServicesInstrumentor
    ServicesInstrumentor().instrument(tracer_provider=..., meter_provider=...)

Every span carries ``crossbridge.area=services``, ``crossbridge.category`` (``orchestration`` for the
sidecar modules, ``general`` for the logging service) and ``code.function.name``. Attribute names are short
for ``crossbridge.services.<name>``. What is traced:

- ``services.logging.setup`` (``setup_logging``): ``log_level``, ``log_file`` (file name only).
  ``services.logging.secure`` (``configure_secure_logging``): ``root_handlers``.
- ``services.sidecar.api.init`` (``SidecarAPIServer.__init__``): ``host``, ``port``. It also adds a small
  ASGI middleware to the server's FastAPI app: every HTTP request's span gets ``crossbridge.area``,
  ``crossbridge.category``, ``route`` (the route template, e.g. ``/events/batch``) and ``status_code``.
  With opentelemetry-instrumentation-fastapi the span is FastAPI's server span (a root, or a child of the
  caller's trace when the request carries ``traceparent``); without it the middleware opens a
  ``services.sidecar.request`` server span itself. 4xx/5xx → ERROR ``http_<code>`` on our own span.
- ``services.sidecar.send`` (``RemoteSidecarClient._send_batch_with_retry``): ``events``; CrossBridge's own
  retry loop (``retry_attempts`` tries of ``POST /events/batch``; after an exception it sleeps 1 s, 2 s, ...,
  ``2 ** attempt``; a non-200 is retried at once) is one ``retry`` event per failed try (``error.type`` the
  exception class or the HTTP status code) and ``retry.attempts``: every ``post`` of the client's
  ``httpx.AsyncClient`` (``_http_client``) during the call is one try. A dropped batch (``False``) → ERROR
  ``sidecar_send_failed``. The httpx spans of each try are its children. The client sends from its own
  thread (an asyncio loop); the span's parent is the context the client was created in
  (opentelemetry-instrumentation-threading), else it is a root.
- ``services.sidecar.event`` (``RemoteSidecarClient.send_event``): high-frequency, counted on the enclosing
  span as ``crossbridge.services.sidecar.event.count`` (a span each with ``CROSSBRIDGE_OTEL_PER_EVENT_SPANS``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import Span, SpanKind, Tracer

from crossbridge_otel._guard import guarded
from crossbridge_otel.patching.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.patching.invokers import AfterCall
from crossbridge_otel.patching.readers import Prefix, arg, bounded, failed_if_false, file_name, size
from crossbridge_otel.patching.targets import Attrs, Target
from crossbridge_otel.patching.wrapping import mark_failure
from crossbridge_otel.retry.attempts import AttemptLog
from crossbridge_otel.retry.observed import ObservedRetry, Tap

__all__ = ["ServicesInstrumentor"]

_P = Prefix("crossbridge.services.")
_API = "services.sidecar_api"
_CLIENT = "services.sidecar_client"
_LOGGING = "services.logging_service"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _State:
    """The instrumentor's tracer, for the request spans opened without a FastAPI instrumentation."""

    tracer: Tracer | None = None


class _RequestAttributes:
    """ASGI middleware: crossbridge attributes on each request's span (FastAPI's server span or our own)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], static: Attrs) -> None:
        self.app = app
        self.static = dict(static)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        span, own, token = trace_api.get_current_span(), False, None
        tracer = _State.tracer
        if not span.is_recording() and tracer is not None:
            span = tracer.start_span("services.sidecar.request", kind=SpanKind.SERVER,
                                     attributes={"http.request.method": str(scope.get("method", ""))})
            own, token = True, context_api.attach(trace_api.set_span_in_context(span))
        done: list[bool] = []

        @guarded("sidecar API request attributes", None)
        def finish(code: int | None) -> None:
            if done:
                return
            done.append(True)
            self._finish(span, scope, code, own)

        async def send_and_see(message: MutableMapping[str, Any]) -> None:
            # at response start: FastAPI's instrumentation may end its span once the body is sent
            if message.get("type") == "http.response.start":
                finish(int(message.get("status", 0)))
            await send(message)

        try:
            await self.app(scope, receive, send_and_see)
        finally:
            finish(None)
            if token is not None:
                context_api.detach(token)
            if own:
                span.end()

    def _finish(self, span: Span, scope: Scope, code: int | None, own: bool) -> None:
        if not span.is_recording():
            return
        route = getattr(scope.get("route"), "path", None)
        span.set_attributes({**self.static, _P.route: bounded(route or "unmatched", 128)})
        if code is not None:
            span.set_attribute(_P.status_code, code)
            if own:
                span.set_attribute("http.response.status_code", code)
                if code >= 400:
                    mark_failure(span, (f"http_{code}", f"HTTP {code}"))


def _api_after(span: Span, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    app = getattr(args[0], "app", None)
    if app is not None and hasattr(app, "add_middleware"):
        static = {"crossbridge.area": "services", "crossbridge.category": "orchestration"}
        app.add_middleware(_RequestAttributes, static=static)


class _ObservedClient:
    """The client's ``httpx.AsyncClient`` with ``post`` observed as attempts (everything else delegated)."""

    def __init__(self, client: Any, attempts: AttemptLog) -> None:
        self._client = client
        self.post = attempts.wrap_async(client.post, _non_200)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _non_200(response: Any) -> tuple[str, str] | None:
    code = getattr(response, "status_code", None)
    return None if code == 200 else (str(code), f"sidecar returned HTTP {code}")


def _send_attempts(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    return int(getattr(getattr(args[0], "config", None), "retry_attempts", 1) or 1)


def _tap_http_client(attempts: AttemptLog, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tap | None:
    """Every ``post`` of the client's ``httpx.AsyncClient`` (``_http_client``, made by the sender loop) is one
    attempt: the client is swapped for an observing proxy for the call only."""
    owner = args[0]
    client = getattr(owner, "_http_client", None)
    if client is None or not callable(getattr(client, "post", None)):
        return None
    owner._http_client = _ObservedClient(client, attempts)
    return args, kwargs, lambda: setattr(owner, "_http_client", client)


def _setup_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_P.log_level: bounded(arg(args, kwargs, 0, "log_level", "INFO"), 16)}


def _secure_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    import logging

    return {_P.root_handlers: len(logging.getLogger().handlers)}


class ServicesInstrumentor(CrossBridgeInstrumentor):
    """Traces CrossBridge's ``services`` package: see the module docstring for the table."""

    area = "services"
    category = "orchestration"
    module_categories = {_LOGGING: "general"}
    targets = (
        Target(_LOGGING, "setup_logging", "services.logging.setup", call_attributes=_setup_call,
               result_attributes=lambda path: {_P.log_file: file_name(path)}),
        Target(_LOGGING, "configure_secure_logging", "services.logging.secure", call_attributes=_secure_call),
        Target(_API, "SidecarAPIServer.__init__", "services.sidecar.api.init",
               call_attributes=lambda a, kw: {_P.host: bounded(arg(a, kw, 2, "host", "0.0.0.0"), 64),
                                              _P.port: arg(a, kw, 3, "port", 8765)},
               invokers=(AfterCall(_api_after),)),
        Target(_CLIENT, "RemoteSidecarClient._send_batch_with_retry", "services.sidecar.send",
               call_attributes=lambda a, kw: {_P.events: size(arg(a, kw, 1, "events"))},
               outcome=failed_if_false("sidecar_send_failed", "the batch was dropped after every attempt failed"),
               invokers=(ObservedRetry("RemoteSidecarClient._send_batch_with_retry", _send_attempts,
                                       _tap_http_client),)),
        Target(_CLIENT, "RemoteSidecarClient.send_event", "services.sidecar.event", mode="count"),
    )

    def _on_instrument(self, **kwargs: Any) -> None:
        _State.tracer = self._tracer

    def _on_uninstrument(self) -> None:
        _State.tracer = None
