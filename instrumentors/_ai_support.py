"""The machinery of :mod:`.ai`: one model call as a GenAI span, the step that asked, and taps on the vendor SDKs.

- :class:`ModelCallSpec` is the invoker of a provider's ``complete()`` / an embedding provider's ``embed()``: it
  names the span ``{gen_ai.operation.name} {gen_ai.request.model}``, sets the request attributes, makes the call the
  *current model call* (a context variable, so the SDK taps below find it), then reads the response, records the
  GenAI metrics and the cost, and adds tokens and cost to the enclosing step;
- :class:`StepSpec` is the invoker of the CrossBridge code that asked (a skill, a migration's AI transformation):
  the calls made inside add up on its span (``crossbridge.ai.calls``, ``cost_usd``, tokens);
- :class:`SdkTap` rows (a row type with its own :meth:`~SdkTap.wrap`) wrap a vendor SDK method with no span of
  their own: they only report to the current model call (the SDK's retry sleeps become ``retry`` events; an
  embeddings response gives its usage). Outside a model call they are a plain pass-through.

Everything on the application's call path is behind the guard; the call itself always goes ahead unchanged.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from opentelemetry import trace as trace_api
from opentelemetry._logs import Logger
from opentelemetry.trace import Span

from crossbridge_otel import genai
from crossbridge_otel._guard import report_failure
from crossbridge_otel.patching.invokers import Invoker, InvokerEnv, InvokerSpec, call_next
from crossbridge_otel.patching.readers import Prefix
from crossbridge_otel.patching.targets import Engine, Failure, Target
from crossbridge_otel.patching.wrapping import SWITCH, error_type, stands_for
from crossbridge_otel.redaction import redact
from crossbridge_otel.retry.attempts import AttemptLog, tally_for

__all__ = ["STATE", "ModelCall", "ModelCallSpec", "ModelSpec", "SdkTap", "Step", "StepSpec", "current_call",
           "sdk_retry", "sdk_usage", "server_attributes", "tapped"]

_P = Prefix("crossbridge.ai.")
_EVENT = "gen_ai.client.inference.operation.details"
_perf = time.perf_counter


@dataclass
class _State:
    """Set by the instrumentor while instrumented: the GenAI instruments, the content switch, the event logger."""

    metrics: genai.GenAIMetrics | None = None
    capture: genai.Capture = field(default_factory=genai.Capture)
    events: Logger | None = None


STATE = _State()


@dataclass(frozen=True)
class ModelSpec:
    """What one kind of model call needs: the operation, how to read the request (attributes with
    ``gen_ai.request.model``) and the response, and whether it goes through a vendor SDK whose retries we see."""

    operation: str
    request: Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]]
    response: Callable[[Any, ModelCall], dict[str, Any]]
    outcome: Callable[[Any], Failure] | None = None
    sdk: bool = False
    content: Callable[[tuple[Any, ...], dict[str, Any]], tuple[list[tuple[str, Any]], list[Any]]] | None = None
    output: Callable[[Any], tuple[str, Any] | None] | None = None


class Step:
    """Tokens and cost of the model calls made inside one step span (and, through ``parent``, its enclosing ones)."""

    def __init__(self, parent: Step | None) -> None:
        self.parent = parent
        self.calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost_usd = 0.0

    def add(self, input_tokens: int | None, output_tokens: int | None, cost_usd: float | None) -> None:
        step: Step | None = self
        while step is not None:
            step.calls += 1
            step.input_tokens += input_tokens or 0
            step.output_tokens += output_tokens or 0
            step.cost_usd += cost_usd or 0.0
            step = step.parent

    def attributes(self) -> dict[str, Any]:
        return {_P.calls: self.calls, _P.input_tokens: self.input_tokens,
                _P.output_tokens: self.output_tokens, _P.cost_usd: self.cost_usd}


class ModelCall:
    """One traced model call: what the SDK taps report to, and what :class:`ModelCallSpec` reads at the end."""

    def __init__(self, span: Span, spec: ModelSpec, request: dict[str, Any], attempts: AttemptLog | None) -> None:
        self.span = span
        self.spec = spec
        self.request = request
        self.attempts = attempts
        self.requests = 0  # SDK responses seen (embeddings: one per batch)
        self.usage_input: int | None = None
        self.response_model: str | None = None

    def retried(self, kwargs: Mapping[str, Any], failure: BaseException | None, delay_s: float) -> None:
        """The SDK slept before retrying (``_sleep_for_retry(retries_taken=, max_retries=, response=)``)."""
        if self.attempts is None:
            return
        response: Any = kwargs.get("response")
        status = getattr(response, "status_code", None)
        self.attempts.max_attempts = int(kwargs.get("max_retries") or 0) + 1
        if status is not None:
            headers = getattr(response, "headers", None)
            after = headers.get("retry-after") if headers is not None else None
            message = f"HTTP {status}" + (f" (Retry-After: {after})" if after else "")
            self.attempts.failed(None, error=f"http_{status}", message=message, delay_s=delay_s, will_retry=True)
        else:
            self.attempts.failed(failure, delay_s=delay_s, will_retry=True)
        self.attempts.start()

    def used(self, response: Any) -> None:
        """A vendor response with ``usage`` (embeddings): summed over the call's requests."""
        self.requests += 1
        tokens = getattr(getattr(response, "usage", None), "prompt_tokens", None)
        if isinstance(tokens, int):
            self.usage_input = (self.usage_input or 0) + tokens
        model = getattr(response, "model", None)
        if isinstance(model, str):
            self.response_model = model


_CURRENT: ContextVar[ModelCall | None] = ContextVar("crossbridge_otel_ai_call", default=None)
_STEP: ContextVar[Step | None] = ContextVar("crossbridge_otel_ai_step", default=None)


def current_call() -> ModelCall | None:
    """The model call running in this context, if any."""
    return _CURRENT.get()


def server_attributes(url: Any) -> dict[str, Any]:
    """``server.address`` / ``server.port`` of a base URL (the scheme's port when none is given)."""
    try:
        parsed = urlparse(str(url))
        port = parsed.port or {"https": 443, "http": 80}.get(parsed.scheme)
    except ValueError:
        return {}
    return {"server.address": parsed.hostname, "server.port": port} if parsed.hostname else {}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _from_sdk(exc: BaseException) -> BaseException | None:
    """The vendor SDK's own error in ``exc``'s chain (CrossBridge re-raises it as its own ``ProviderError``)."""
    for item in _chain(exc):
        if type(item).__module__.split(".")[0] in ("openai", "anthropic"):
            return item
    return None


def _error_attributes(exc: BaseException) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for item in _chain(exc)[1:]:
        attrs.setdefault(_P.cause, error_type(item))
        status = getattr(item, "status_code", None) or getattr(getattr(item, "response", None), "status_code", None)
        if isinstance(status, int):
            attrs.setdefault("http.response.status_code", status)
    return attrs


@dataclass(frozen=True)
class ModelCallSpec(InvokerSpec):
    """The invoker of a model-call row (see the module docstring): ``model`` says how to read this provider."""

    model: ModelSpec

    def build(self, env: InvokerEnv, inner: Invoker | None) -> Invoker:
        spec, where, proceed = self.model, env.target.span, call_next(inner)
        tally = tally_for(env.meter, env.area, where) if spec.sdk else None

        def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
            started = _perf()
            try:
                request = spec.request(args, kwargs)
                model = request.get("gen_ai.request.model")
                span.update_name(f"{spec.operation} {model}" if model else spec.operation)
                span.set_attributes({k: v for k, v in request.items() if v is not None})
                attempts = AttemptLog(span, max_attempts=1, tally=tally) if spec.sdk else None
                call = ModelCall(span, spec, request, attempts)
                if attempts is not None:
                    attempts.start()
            except Exception as exc:
                report_failure(f"request attributes of {where}", exc)
                return proceed(original, args, kwargs, span)
            token = _CURRENT.set(call)
            result: Any = None
            error: BaseException | None = None
            try:
                result = proceed(original, args, kwargs, span)
                return result
            except BaseException as exc:
                error = exc
                raise
            finally:
                _CURRENT.reset(token)
                try:
                    _finish(call, args, kwargs, result, error, _perf() - started)
                except Exception as exc:
                    report_failure(f"response attributes of {where}", exc)

        return invoke


def _finish(call: ModelCall, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any,
            error: BaseException | None, duration_s: float) -> None:
    spec, span = call.spec, call.span
    attrs = dict(call.request)
    usage: dict[str, Any] = {}
    failure = None
    if error is None:
        usage = spec.response(result, call)
        failure = spec.outcome(result) if spec.outcome is not None else None
        if failure is not None:
            attrs["error.type"] = failure[0]
    else:
        attrs["error.type"] = error_type(error)
        span.set_attributes(_error_attributes(error))
    span.set_attributes({k: v for k, v in usage.items() if v is not None})
    attrs.update(usage)
    _attempts_end(call, error)
    input_tokens = usage.get("gen_ai.usage.input_tokens")
    output_tokens = usage.get("gen_ai.usage.output_tokens")
    cost = usage.get(_P.cost_usd) if error is None else None
    if STATE.metrics is not None:
        STATE.metrics.record(attrs, duration_s, input_tokens=input_tokens, output_tokens=output_tokens,
                             cost_usd=cost)
    step_now = _STEP.get()
    if step_now is not None:
        step_now.add(input_tokens, output_tokens, cost)
    if STATE.capture.any and spec.content is not None:
        _content(call, args, kwargs, result if error is None else None)


def _attempts_end(call: ModelCall, error: BaseException | None) -> None:
    """The SDK's loop, as the contract shows any observed loop: the last failed attempt, then ``retry.attempts``.
    An error that never came from the SDK (raised before a request, or after a good response) is no attempt."""
    attempts = call.attempts
    if attempts is None:
        return
    if error is None:
        attempts.succeeded()
    else:
        sdk_error = _from_sdk(error)
        if sdk_error is not None:
            attempts.failed(sdk_error)
        elif attempts.attempts > 1:
            attempts.succeeded()  # the SDK got its answer in the end; CrossBridge failed on it
        else:
            return
    attempts.close()


def _content(call: ModelCall, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    """Prompts and completions, only when asked (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``)."""
    spec = call.spec
    assert spec.content is not None
    messages, instructions = spec.content(args, kwargs)
    attrs = {"gen_ai.input.messages": genai.messages_json(messages)}
    if instructions:
        attrs["gen_ai.system_instructions"] = genai.instructions_json(instructions)
    output = spec.output(result) if spec.output is not None and result is not None else None
    if output is not None:
        attrs["gen_ai.output.messages"] = genai.messages_json([("assistant", output[1])], finish_reason=output[0])
    if STATE.capture.span:
        call.span.set_attributes(attrs)
    if STATE.capture.event and STATE.events is not None:
        keys = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model")
        STATE.events.emit(event_name=_EVENT, context=trace_api.set_span_in_context(call.span),
                          attributes={**{k: call.request[k] for k in keys if call.request.get(k)}, **attrs})


@dataclass(frozen=True)
class StepSpec(InvokerSpec):
    """The invoker of a step row: model calls inside add up on its span; ``name`` may rename the span."""

    name: Callable[[tuple[Any, ...], dict[str, Any]], str | None] | None = None

    def build(self, env: InvokerEnv, inner: Invoker | None) -> Invoker:
        name, where, proceed = self.name, env.target.span, call_next(inner)

        def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
            try:
                if name is not None:
                    span.update_name(name(args, kwargs) or where)
            except Exception as exc:
                report_failure(f"name of {where}", exc)
            mine = Step(_STEP.get())
            token = _STEP.set(mine)
            try:
                return proceed(original, args, kwargs, span)
            finally:
                _STEP.reset(token)
                if mine.calls:
                    try:
                        span.set_attributes(mine.attributes())
                    except Exception as exc:
                        report_failure(f"totals of {where}", exc)

        return invoke


@dataclass(frozen=True)
class SdkTap(Target):
    """A vendor SDK method that reports to the current model call and has no span (``observe`` makes the call)."""

    observe: Callable[[ModelCall, Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any] | None = None

    def wrap(self, raw: Any, engine: Engine) -> Any:
        if self.observe is not None and callable(raw) and not isinstance(raw, type):
            return tapped(raw, self.observe)
        return engine.wrapper(raw, self)


def tapped(original: Callable[..., Any], observe: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` handed to ``observe`` inside a model call; called straight through otherwise."""

    def tap(*args: Any, **kwargs: Any) -> Any:
        call = _CURRENT.get()
        if call is None or not SWITCH.on:
            return original(*args, **kwargs)
        return observe(call, original, args, kwargs)

    return stands_for(tap, original)


def sdk_retry(call: ModelCall, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``SyncAPIClient._sleep_for_retry`` of openai/anthropic: called inside the ``except`` of the failed attempt
    (so the exception in hand is its failure) and sleeps before the next one (measured)."""
    failure = sys.exc_info()[1]
    started = time.monotonic()
    try:
        return original(*args, **kwargs)
    finally:
        try:
            call.retried(kwargs, failure, time.monotonic() - started)
        except Exception as exc:
            report_failure("observing the SDK's retry", exc)


def sdk_usage(call: ModelCall, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``Embeddings.create`` of openai: its response's usage and model go to the current model call."""
    response = original(*args, **kwargs)
    try:
        call.used(response)
    except Exception as exc:
        report_failure("reading the SDK's usage", exc)
    return response


def bounded_model(value: Any) -> str | None:
    """A model name as an attribute: redacted, at most 128 characters (it is also in the span name)."""
    if value is None or value == "":
        return None
    text = redact(str(value))
    return text[:128]

