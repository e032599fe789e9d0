"""AI instrumentation: CrossBridge's model calls, by the OpenTelemetry GenAI semantic conventions.

Enabled under ``opentelemetry-instrument`` as ``crossbridge_ai``,
its name in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``; in code::

    from crossbridge_otel.instrumentors.ai import AIInstrumentor
    AIInstrumentor().instrument(tracer_provider=..., meter_provider=..., logger_provider=...)

Every span carries ``crossbridge.area=ai``, ``crossbridge.category`` (``ai``; ``orchestration`` for the
migration's steps) and ``code.function.name``. Short names mean ``crossbridge.ai.<name>``. What is traced:

- ``chat {model}`` (kind CLIENT) for ``complete()`` of ``OpenAIProvider``, ``AzureOpenAIProvider``,
  ``AnthropicProvider``, ``VLLMProvider`` and ``OllamaProvider`` (``core.ai.providers``):
  ``gen_ai.operation.name=chat``, ``gen_ai.provider.name`` (``openai``, ``azure.ai.openai``, ``anthropic``, and,
  outside the conventions' list, ``vllm`` and ``ollama``), ``gen_ai.request.model`` (Azure: the deployment,
  which CrossBridge sends as the model), the parameters the provider really sends (``temperature``,
  ``max_tokens``, ``top_p``, penalties, ``stop_sequences``), ``server.address``/``server.port``, then
  ``gen_ai.response.model``/``id``/``finish_reasons`` and ``gen_ai.usage.input_tokens``/``output_tokens`` (plus
  ``cache_read``/``cache_creation``/``reasoning`` counts) when the response carries them; ``cost_usd`` (US
  dollars, the provider's ``estimate_cost``; 0 for vLLM and Ollama), ``status``, ``messages``, ``task_type``,
  ``execution_id``. A failure is CrossBridge's exception (``core.ai.base.RateLimitError``,
  ``AuthenticationError``, ``ProviderError``) as ``error.type``, with the vendor's error as ``cause`` and
  ``http.response.status_code``; an ``AIResponse`` whose status is not ``completed`` is ERROR with that status.
  The ``ai`` rate limit (``CROSSBRIDGE_OTEL_RATE_LIMITS=ai=N/S``) applies; nothing is ever retried by us.
  The SDK's own retries (openai, anthropic: ``max_retries``, ``Retry-After``) are ``retry`` events with the
  measured sleep, and ``retry.attempts``.
- ``embeddings {model}`` (kind CLIENT) for ``core.embeddings.providers.OpenAIProvider.embed``/``embed_batch`` and
  ``core.memory.embedding_provider.OpenAIEmbeddingProvider.embed``: ``inputs``,
  ``gen_ai.embeddings.dimension.count``, input tokens and response model from the SDK's responses, ``requests``.
- Steps that ask, whose span sums the calls made inside (``calls``, ``input_tokens``, ``output_tokens``,
  ``cost_usd``): ``ai.skill.<skill name>`` (``AIOrchestrator.execute_skill``; ``CostLimitExceededError`` and
  ``CreditExhaustedError`` are recorded here, before any call), ``ai.prompt`` (``execute_with_prompt``),
  ``ai.transform.page_object``/``locators``/``step_definitions`` (the migration's AI transformation in
  ``MigrationOrchestrator``; ``None`` → ``ai_transformation_failed``: CrossBridge falls back to patterns),
  ``ai.hardened.complete``/``embed`` (``core.runtime.ai_integration.HardenedAIProvider``).
- Metrics: ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration`` with the conventions' bucket
  boundaries, ``crossbridge.ai.cost`` (``{USD}``) per provider and model; :func:`crossbridge_otel.genai.total_cost`.

Prompts and completions are never exported unless ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` asks
(:func:`crossbridge_otel.genai.content_capture`); then they are redacted and bounded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from opentelemetry._logs import get_logger
from opentelemetry.trace import SpanKind

from crossbridge_otel import genai
from crossbridge_otel.patching.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.patching.readers import Prefix, arg, bounded, enum_value, file_name, size
from crossbridge_otel.patching.targets import Attrs, Failure, Target
from crossbridge_otel.retry.ratelimit import RateLimit
from crossbridge_otel.version import __version__

from ._ai_support import (
    STATE,
    ModelCall,
    ModelCallSpec,
    ModelSpec,
    SdkTap,
    StepSpec,
    bounded_model,
    sdk_retry,
    sdk_usage,
    server_attributes,
)

__all__ = ["AIInstrumentor"]

_P = Prefix("crossbridge.ai.")
_PROVIDERS = "core.ai.providers"
_MIGRATION = "core.orchestration.orchestrator"
_PARAMETERS = {"temperature": "gen_ai.request.temperature", "max_tokens": "gen_ai.request.max_tokens",
               "top_p": "gen_ai.request.top_p", "frequency_penalty": "gen_ai.request.frequency_penalty",
               "presence_penalty": "gen_ai.request.presence_penalty"}
_OPENAI_PARAMETERS = tuple(_PARAMETERS)
_OTHER_PARAMETERS = ("temperature", "max_tokens", "top_p")


# -- chat: request, response, content -----------------------------------------------------------------

def _chat_request(provider: str, parameters: tuple[str, ...], model: Callable[[Any, Any], Any],
                  url: Callable[[Any], Any]) -> Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]]:
    """What one provider class sends (``complete`` takes keyword arguments only)."""

    def request(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        config, context = kwargs.get("model_config"), kwargs.get("context")
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
            "gen_ai.request.model": bounded_model(model(args[0], config)), **server_attributes(url(args[0])),
            _P.messages: size(kwargs.get("messages")),
            _P.task_type: enum_value(getattr(context, "task_type", None)),
            _P.execution_id: bounded(getattr(context, "execution_id", None), 64),
        }
        for name in parameters:
            value = getattr(config, name, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                attrs[_PARAMETERS[name]] = value
        stops = getattr(config, "stop_sequences", None)
        if stops:
            attrs["gen_ai.request.stop_sequences"] = [bounded(s, 64) or "" for s in list(stops)[:16]]
        return attrs

    return request


def _anthropic_url(provider: Any) -> Any:
    # The SDK's own resolution: the client's base URL once built, else ANTHROPIC_BASE_URL, else the default.
    client = getattr(provider, "_client", None)
    return getattr(client, "base_url", None) or os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"


def _int(mapping: Any, *path: str) -> int | None:
    for key in path:
        mapping = mapping.get(key) if isinstance(mapping, dict) else None
    return mapping if isinstance(mapping, int) and not isinstance(mapping, bool) else None


def _usage(raw: dict[str, Any], token_usage: Any) -> dict[str, Any]:
    """Token counts as the response carries them; nothing when it carries none (CrossBridge then says 0)."""
    usage = raw.get("usage")
    if isinstance(usage, dict) and "input_tokens" in usage:  # Anthropic: cache tokens are not in input_tokens
        read, created = _int(usage, "cache_read_input_tokens"), _int(usage, "cache_creation_input_tokens")
        return {"gen_ai.usage.input_tokens": (_int(usage, "input_tokens") or 0) + (read or 0) + (created or 0),
                "gen_ai.usage.output_tokens": _int(usage, "output_tokens"),
                "gen_ai.usage.cache_read.input_tokens": read, "gen_ai.usage.cache_creation.input_tokens": created}
    if isinstance(usage, dict):  # OpenAI and the OpenAI-compatible vLLM
        return {"gen_ai.usage.input_tokens": _int(usage, "prompt_tokens"),
                "gen_ai.usage.output_tokens": _int(usage, "completion_tokens"),
                "gen_ai.usage.cache_read.input_tokens": _int(usage, "prompt_tokens_details", "cached_tokens"),
                "gen_ai.usage.reasoning.output_tokens": _int(usage, "completion_tokens_details", "reasoning_tokens")}
    if "prompt_eval_count" in raw or "eval_count" in raw:  # Ollama
        return {"gen_ai.usage.input_tokens": _int(raw, "prompt_eval_count"),
                "gen_ai.usage.output_tokens": _int(raw, "eval_count")}
    if not raw and getattr(token_usage, "total_tokens", None):  # a provider without a raw response
        return {"gen_ai.usage.input_tokens": token_usage.prompt_tokens,
                "gen_ai.usage.output_tokens": token_usage.completion_tokens}
    return {}


def _finish_reasons(raw: dict[str, Any]) -> list[str]:
    choices = raw.get("choices")
    if isinstance(choices, list):
        return [str(c.get("finish_reason")) for c in choices if isinstance(c, dict) and c.get("finish_reason")]
    reason = raw.get("stop_reason") or raw.get("done_reason")
    return [str(reason)] if reason else []


def _raw(response: Any) -> dict[str, Any]:
    raw = getattr(response, "raw_response", None)
    return raw if isinstance(raw, dict) else {}


def _chat_response(response: Any, call: ModelCall) -> dict[str, Any]:
    raw = _raw(response)
    cost = getattr(response, "cost", None)
    return {
        "gen_ai.response.model": bounded_model(raw.get("model")),
        "gen_ai.response.id": bounded(raw.get("id"), 128),
        "gen_ai.response.finish_reasons": _finish_reasons(raw) or None,
        **_usage(raw, getattr(response, "token_usage", None)),
        _P.cost_usd: float(cost) if isinstance(cost, (int, float)) else None,
        _P.status: enum_value(getattr(response, "status", None)),
    }


def _status_outcome(response: Any) -> Failure:
    """An ``AIResponse`` whose status is not ``completed`` (``failed``, ``rate_limited``, ``credit_exhausted``)."""
    status = enum_value(getattr(response, "status", None))
    if status is None or status == "completed":
        return None
    error = getattr(response, "error", None)
    return str(status), bounded(error, 512) or f"the AIResponse status is {status}"


def _chat_content(system_apart: bool) -> Callable[[tuple[Any, ...], dict[str, Any]],
                                                  tuple[list[tuple[str, Any]], list[Any]]]:
    def read(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[tuple[str, Any]], list[Any]]:
        messages, instructions = [], []
        for message in kwargs.get("messages") or []:
            role, text = getattr(message, "role", None), getattr(message, "content", None)
            if system_apart and role == "system":
                instructions.append(text)  # Anthropic gets the system prompt apart from the messages
            else:
                messages.append((str(role), text))
        return messages, instructions

    return read


def _chat_output(response: Any) -> tuple[str, Any] | None:
    text = getattr(response, "content", None)
    return ((_finish_reasons(_raw(response)) or ["stop"])[0], text) if text is not None else None


def _chat(provider: str, parameters: tuple[str, ...], model: Callable[[Any, Any], Any],
          url: Callable[[Any], Any], *, sdk: bool, system_apart: bool = False) -> ModelSpec:
    return ModelSpec("chat", _chat_request(provider, parameters, model, url), _chat_response,
                     outcome=_status_outcome, sdk=sdk, content=_chat_content(system_apart), output=_chat_output)


_OPENAI = _chat("openai", _OPENAI_PARAMETERS, lambda p, c: getattr(c, "model", None),
                lambda p: getattr(p, "base_url", None), sdk=True)
_AZURE = _chat("azure.ai.openai", _OPENAI_PARAMETERS, lambda p, c: getattr(p, "deployment_name", None),
               lambda p: getattr(p, "endpoint", None), sdk=True)
_ANTHROPIC = _chat("anthropic", _OTHER_PARAMETERS, lambda p, c: getattr(c, "model", None), _anthropic_url,
                   sdk=True, system_apart=True)
_VLLM = _chat("vllm", _OTHER_PARAMETERS, lambda p, c: getattr(c, "model", None) or getattr(p, "model_name", None),
              lambda p: getattr(p, "base_url", None), sdk=False)
_OLLAMA = _chat("ollama", _OTHER_PARAMETERS,
                lambda p, c: getattr(c, "model", None) or getattr(p, "model_name", None),
                lambda p: getattr(p, "base_url", None), sdk=False)


def _chat_row(cls: str, spec: ModelSpec) -> Target:
    return Target(_PROVIDERS, f"{cls}.complete", "ai.chat", kind=SpanKind.CLIENT, outcome=_status_outcome,
                  invokers=(RateLimit("ai"), ModelCallSpec(spec)))


# -- embeddings --------------------------------------------------------------------------------------

def _embeddings(model_attribute: str, inputs: str) -> ModelSpec:
    def request(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        texts = arg(args, kwargs, 1, inputs)
        client = getattr(args[0], "client", None)
        return {"gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": bounded_model(getattr(args[0], model_attribute, None)),
                **server_attributes(getattr(client, "base_url", None)),
                _P.inputs: 1 if isinstance(texts, str) else size(texts)}

    def response(vectors: Any, call: ModelCall) -> dict[str, Any]:
        first = vectors[0] if isinstance(vectors, list) and vectors else None
        dimension = len(vectors) if isinstance(first, float) else size(first)
        return {"gen_ai.embeddings.dimension.count": dimension, "gen_ai.usage.input_tokens": call.usage_input,
                "gen_ai.response.model": bounded_model(call.response_model), _P.requests: call.requests or None}

    return ModelSpec("embeddings", request, response, sdk=True)


def _embeddings_row(module: str, qualname: str, spec: ModelSpec) -> Target:
    return Target(module, qualname, "ai.embeddings", kind=SpanKind.CLIENT, invokers=(ModelCallSpec(spec),))


# -- the steps that ask --------------------------------------------------------------------------------

_SKILL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _skill_name(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    name = str(getattr(arg(args, kwargs, 1, "skill"), "skill_name", "") or "")
    return f"ai.skill.{name if _SKILL_NAME.match(name) else 'custom'}"  # low-cardinality span names only


def _skill_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    skill, context = arg(args, kwargs, 1, "skill"), arg(args, kwargs, 3, "context")
    return {_P.skill: bounded(getattr(skill, "skill_name", None), 64),
            _P.task_type: enum_value(getattr(skill, "task_type", None)),
            "gen_ai.prompt.name": bounded(getattr(skill, "prompt_template_id", None), 64),
            _P.prompt_version: bounded(getattr(skill, "prompt_version", None), 32),
            _P.provider_requested: enum_value(getattr(context, "provider", None))}


def _transform_call(content: str, path: str) -> Callable[[tuple[Any, ...], dict[str, Any]], Attrs]:
    def read(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        source, config = arg(args, kwargs, 1, content), arg(args, kwargs, 3, "ai_config")

        def setting(name: str) -> Any:
            return config.get(name) if isinstance(config, dict) else getattr(config, name, None)

        return {_P.source_file: file_name(arg(args, kwargs, 2, path)),
                _P.source_bytes: len(source) if isinstance(source, str) else None,
                _P.provider_requested: bounded(setting("provider"), 32),
                _P.model_requested: bounded_model(setting("model"))}

    return read


def _transform_outcome(result: Any) -> Failure:
    if result is not None:
        return None
    return ("ai_transformation_failed",
            "CrossBridge's AI transformation returned None (its log says why); it falls back to patterns")


def _transform_row(qualname: str, span: str, content: str, path: str) -> Target:
    return Target(_MIGRATION, f"MigrationOrchestrator.{qualname}", span, call_attributes=_transform_call(content, path),
                  result_attributes=lambda r: {_P.output_bytes: len(r) if isinstance(r, str) else None},
                  outcome=_transform_outcome, invokers=(StepSpec(),))


def _hardened_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    hardened = args[0]
    return {_P.provider_class: type(getattr(hardened, "provider", None)).__name__,
            _P.retry_enabled: getattr(hardened, "enable_retry", None),
            _P.rate_limiting_enabled: getattr(hardened, "enable_rate_limiting", None)}


class AIInstrumentor(CrossBridgeInstrumentor):
    """Traces CrossBridge's model calls: see the module docstring for the table."""

    area = "ai"
    category = "ai"
    module_categories = {_MIGRATION: "orchestration"}
    targets = (
        _chat_row("OpenAIProvider", _OPENAI),
        _chat_row("AzureOpenAIProvider", _AZURE),
        _chat_row("AnthropicProvider", _ANTHROPIC),
        _chat_row("VLLMProvider", _VLLM),
        _chat_row("OllamaProvider", _OLLAMA),
        _embeddings_row("core.embeddings.providers", "OpenAIProvider.embed", _embeddings("model", "text")),
        _embeddings_row("core.embeddings.providers", "OpenAIProvider.embed_batch", _embeddings("model", "texts")),
        _embeddings_row("core.memory.embedding_provider", "OpenAIEmbeddingProvider.embed",
                        _embeddings("_model", "texts")),
        Target("core.ai.orchestrator", "AIOrchestrator.execute_skill", "ai.skill", call_attributes=_skill_call,
               invokers=(StepSpec(_skill_name),)),
        Target("core.ai.orchestrator", "AIOrchestrator.execute_with_prompt", "ai.prompt",
               call_attributes=lambda a, kw: {"gen_ai.prompt.name": bounded(arg(a, kw, 1, "prompt_template_id"), 64)},
               invokers=(StepSpec(),)),
        _transform_row("_convert_page_object_with_ai", "ai.transform.page_object", "java_content", "file_path"),
        _transform_row("_convert_locators_with_ai", "ai.transform.locators", "java_content", "file_path"),
        _transform_row("_transform_step_definitions_with_ai", "ai.transform.step_definitions", "content",
                       "source_path"),
        Target("core.runtime.ai_integration", "HardenedAIProvider.complete", "ai.hardened.complete",
               call_attributes=_hardened_call, invokers=(StepSpec(),)),
        Target("core.runtime.ai_integration", "HardenedAIProvider.embed", "ai.hardened.embed",
               call_attributes=_hardened_call, invokers=(StepSpec(),)),
        # The vendor SDKs' own retry loop and embeddings usage: no span, reported to the current model call.
        SdkTap("openai._base_client", "SyncAPIClient._sleep_for_retry", "ai.sdk.retry", observe=sdk_retry),
        SdkTap("anthropic._base_client", "SyncAPIClient._sleep_for_retry", "ai.sdk.retry", observe=sdk_retry),
        SdkTap("openai.resources.embeddings", "Embeddings.create", "ai.sdk.usage", observe=sdk_usage),
    )

    def _on_instrument(self, **kwargs: Any) -> None:
        STATE.metrics = genai.GenAIMetrics(self._meter)
        STATE.capture = genai.content_capture()
        STATE.events = get_logger("crossbridge_otel.ai", __version__, kwargs.get("logger_provider"))

    def _on_uninstrument(self) -> None:
        STATE.metrics, STATE.capture, STATE.events = None, genai.Capture(), None
