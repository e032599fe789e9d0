"""AI area: CrossBridge's real providers, with the real openai/anthropic SDKs and requests, against a local fake."""

from __future__ import annotations

import json

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from support import fake_llm
from support.spans import children, retry_events

from crossbridge_otel import genai
from crossbridge_otel.instrumentors.ai import AIInstrumentor
from crossbridge_otel.patching import status
from crossbridge_otel.retry import ratelimit
from crossbridge_otel.settings import load as load_settings

A = "crossbridge.ai."
PROMPT = "Translate LoginTest; the secret-prompt-text-4711 must never be exported"


@pytest.fixture(autouse=True)
def _fresh():
    genai.reset_costs()
    ratelimit.reset_buckets()
    yield
    genai.reset_costs()
    ratelimit.reset_buckets()


@pytest.fixture
def llm(monkeypatch):
    """The fake model server; the SDKs that read their base URL from the environment are pointed at it."""
    with fake_llm.serve() as state:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", state.base)
        monkeypatch.setenv("OPENAI_BASE_URL", state.base + "/v1")
        yield state


@pytest.fixture
def ai(instrument):
    return instrument(AIInstrumentor)


def _provider(kind: str, llm):
    from core.ai import providers

    return {
        "openai": lambda: providers.OpenAIProvider({"api_key": "sk-test-key", "base_url": llm.base + "/v1"}),
        "azure": lambda: providers.AzureOpenAIProvider({"api_key": "az-key", "endpoint": llm.base,
                                                        "deployment_name": "gpt4o-prod"}),
        "anthropic": lambda: providers.AnthropicProvider({"api_key": "sk-ant-test"}),
        "vllm": lambda: providers.VLLMProvider({"base_url": llm.base + "/v1"}),
        "ollama": lambda: providers.OllamaProvider({"base_url": llm.base}),
    }[kind]()


def _complete(provider, model: str, prompt: str = PROMPT, **config):
    from core.ai.models import AIExecutionContext, AIMessage, ModelConfig

    return provider.complete(messages=[AIMessage("system", "You migrate tests."), AIMessage("user", prompt)],
                             model_config=ModelConfig(model=model, temperature=0.2, max_tokens=300, **config),
                             context=AIExecutionContext(allow_external_ai=True))


def _exported(telemetry) -> str:
    """Every attribute value, event attribute, status text and log body/attribute the test exported."""
    parts = []
    for s in telemetry.spans():
        parts += [s.name, str(s.status.description)] + [str(v) for v in s.attributes.values()]
        parts += [str(v) for e in s.events for v in e.attributes.values()]
    for r in telemetry.logs():
        parts += [str(r.body)] + [str(v) for v in (r.attributes or {}).values()]
    return "\n".join(parts)


def _points(telemetry, name):
    return telemetry.metric_points(name)


# -- spans by the GenAI conventions --------------------------------------------------------------------

def test_openai_chat_span_follows_the_genai_conventions(ai, telemetry, llm):
    """A completed OpenAI call: 'chat <model>', CLIENT, request/response/usage/server attributes, cost in USD."""
    response = _complete(_provider("openai", llm), "gpt-4o-mini")
    span = telemetry.span("chat gpt-4o-mini")
    assert span.kind == SpanKind.CLIENT and span.status.status_code == StatusCode.UNSET
    a = span.attributes
    assert (a["gen_ai.operation.name"], a["gen_ai.provider.name"], a["gen_ai.request.model"]) == (
        "chat", "openai", "gpt-4o-mini")
    assert (a["gen_ai.request.temperature"], a["gen_ai.request.max_tokens"], a["gen_ai.request.top_p"]) == (
        0.2, 300, 1.0)
    assert (a["gen_ai.response.model"], a["gen_ai.response.id"], a["gen_ai.response.finish_reasons"]) == (
        "gpt-4o-mini-2024-08-06", "chatcmpl-fake-0001", ("stop",))
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (12, 5)
    assert a["gen_ai.usage.cache_read.input_tokens"] == 4
    assert (a["server.address"], a["server.port"]) == ("127.0.0.1", int(llm.base.rsplit(":", 1)[1]))
    assert a[A + "cost_usd"] == response.cost == pytest.approx(12 / 1000 * 0.03 + 5 / 1000 * 0.06)
    assert (a["crossbridge.area"], a["crossbridge.category"]) == ("ai", "ai")
    assert a["code.function.name"] == "core.ai.providers.OpenAIProvider.complete"
    assert a["retry.attempts"] == 1 and not retry_events(span)


def test_azure_openai_is_azure_ai_openai_with_the_deployment_as_model(ai, telemetry, llm):
    """Azure: provider azure.ai.openai, the deployment (what CrossBridge sends as the model) as request model."""
    response = _complete(_provider("azure", llm), "gpt-4o")
    span = telemetry.span("chat gpt4o-prod")
    assert span.attributes["gen_ai.provider.name"] == "azure.ai.openai"
    assert response.model == span.attributes["gen_ai.request.model"] == "gpt4o-prod"
    assert llm.paths() == ["/openai/deployments/gpt4o-prod/chat/completions"]


def test_anthropic_input_tokens_include_the_cache_reads(ai, telemetry, llm):
    """Anthropic: input tokens as the conventions count them (20 + 3 from the cache), cache reads apart."""
    response = _complete(_provider("anthropic", llm), "claude-3-5-sonnet-20241022")
    a = telemetry.span("chat claude-3-5-sonnet-20241022").attributes
    assert (a["gen_ai.provider.name"], a["gen_ai.response.id"], a["gen_ai.response.finish_reasons"]) == (
        "anthropic", "msg_fake_0001", ("end_turn",))
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.cache_read.input_tokens"]) == (23, 3)
    assert a["gen_ai.usage.output_tokens"] == response.token_usage.completion_tokens == 7
    assert a["server.address"] == "127.0.0.1" and a[A + "cost_usd"] == response.cost
    assert "gen_ai.request.frequency_penalty" not in a  # CrossBridge does not send it to Anthropic


@pytest.mark.parametrize(("kind", "model", "tokens"), [("vllm", "deepseek-coder", (12, 5)),
                                                        ("ollama", "llama3", (26, 9))])
def test_self_hosted_providers_have_their_documented_names(ai, telemetry, llm, kind, model, tokens):
    """vLLM and Ollama (plain requests): provider 'vllm' / 'ollama', tokens from the response, cost 0."""
    _complete(_provider(kind, llm), model)
    a = telemetry.span(f"chat {model}").attributes
    assert a["gen_ai.provider.name"] == kind and a[A + "cost_usd"] == 0.0
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == tokens
    assert "retry.attempts" not in a  # no SDK retry loop to observe


# -- failures --------------------------------------------------------------------------------------------

def test_openai_429_with_retry_after_is_retry_events_then_rate_limit_error(ai, telemetry, llm):
    """Three 429s: the SDK's two retries honour Retry-After (events), then CrossBridge's RateLimitError."""
    from core.ai.base import RateLimitError

    llm.script("429", "429", "429")
    with pytest.raises(RateLimitError) as raised:
        _complete(_provider("openai", llm), "gpt-4o-mini")
    span = telemetry.span("chat gpt-4o-mini")
    assert span.attributes["error.type"] == "core.ai.base.RateLimitError"
    assert span.attributes["http.response.status_code"] == 429
    assert span.attributes[A + "cause"] == "openai.RateLimitError"
    assert span.events[-1].attributes["exception.message"] == str(raised.value)
    events = retry_events(span)
    assert [e.attributes["retry.will_retry"] for e in events] == [True, True, False]
    assert [e.attributes["error.type"] for e in events[:2]] == ["http_429", "http_429"]
    assert all(e.attributes["retry.delay_s"] >= llm.retry_after * 0.9 for e in events[:2])
    assert events[0].attributes["retry.max_attempts"] == 3 and span.attributes["retry.attempts"] == 3
    assert len(llm.paths()) == 3  # the SDK's own attempts only: the distribution adds none


def test_429_then_success_is_one_retry_event_on_an_ok_span(ai, telemetry, llm):
    """A 429 once, then an answer: the span is OK, one retry event, two attempts."""
    llm.script("429")
    _complete(_provider("anthropic", llm), "claude-sonnet-4-5")
    span = telemetry.span("chat claude-sonnet-4-5")
    assert span.status.status_code == StatusCode.UNSET
    [event] = retry_events(span)
    assert event.attributes["retry.will_retry"] and event.attributes["error.type"] == "http_429"
    assert "Retry-After" in event.attributes["exception.message"]
    assert span.attributes["retry.attempts"] == 2 and span.attributes["gen_ai.usage.output_tokens"] == 7


def test_401_is_crossbridge_authentication_error_without_retry(ai, telemetry, llm):
    """401: CrossBridge's AuthenticationError, one attempt (the SDK does not retry it), the key never exported."""
    from core.ai.base import AuthenticationError

    llm.script("401")
    with pytest.raises(AuthenticationError):
        _complete(_provider("anthropic", llm), "claude-3-5-sonnet-20241022")
    span = telemetry.span("chat claude-3-5-sonnet-20241022")
    assert span.attributes["error.type"] == "core.ai.base.AuthenticationError"
    assert span.attributes["http.response.status_code"] == 401
    [event] = retry_events(span)
    assert not event.attributes["retry.will_retry"]
    assert event.attributes["error.type"] == "anthropic.AuthenticationError"
    assert span.attributes["retry.attempts"] == 1 and len(llm.paths()) == 1
    assert "sk-ant-test" not in _exported(telemetry)


def test_500_is_provider_error_after_the_sdk_retries(ai, telemetry, llm):
    """500 three times (Azure): CrossBridge's ProviderError after three attempts, status code kept."""
    from core.ai.base import ProviderError

    llm.script("500", "500", "500")
    with pytest.raises(ProviderError):
        _complete(_provider("azure", llm), "gpt-4o")
    span = telemetry.span("chat gpt4o-prod")
    assert span.attributes["error.type"] == "core.ai.base.ProviderError"
    assert span.attributes["http.response.status_code"] == 500 and span.attributes["retry.attempts"] == 3
    assert [e.attributes["error.type"] for e in retry_events(span)] == ["http_500", "http_500",
                                                                       "openai.InternalServerError"]


def test_a_timed_out_attempt_is_a_retry_event_before_the_answer(ai, telemetry, llm):
    """The first attempt outlives the client timeout: a retry event carrying the timeout, then the answer."""
    llm.slow_s = 1.0
    llm.script("slow")
    _complete(_provider("openai", llm), "gpt-4o-mini", timeout=0.3)
    span = telemetry.span("chat gpt-4o-mini")
    [event] = retry_events(span)
    assert event.attributes["retry.will_retry"] and "Timeout" in event.attributes["error.type"]
    assert span.status.status_code == StatusCode.UNSET and span.attributes["retry.attempts"] == 2


def test_a_requests_timeout_is_provider_error_with_its_cause(ai, telemetry, llm):
    """vLLM over requests: a read timeout is CrossBridge's ProviderError, the requests exception its cause."""
    from core.ai.base import ProviderError

    llm.slow_s = 1.0
    llm.script("slow")
    with pytest.raises(ProviderError):
        _complete(_provider("vllm", llm), "deepseek-coder", timeout=0.3)
    span = telemetry.span("chat deepseek-coder")
    assert span.attributes[A + "cause"] == "requests.exceptions.ReadTimeout"
    assert not retry_events(span) and len(llm.paths()) == 1  # no retry added by the distribution


def test_openai_response_without_usage_fails_in_crossbridge(ai, telemetry, llm):
    """No usage block: CrossBridge's OpenAI provider fails reading it (ProviderError); no token attributes."""
    from core.ai.base import ProviderError

    llm.script("no_usage")
    with pytest.raises(ProviderError, match="prompt_tokens"):
        _complete(_provider("openai", llm), "gpt-4o-mini")
    span = telemetry.span("chat gpt-4o-mini")
    assert span.attributes[A + "cause"] == "AttributeError"
    assert not [k for k in span.attributes if k.startswith("gen_ai.usage.")]
    assert "retry.attempts" not in span.attributes  # the HTTP call succeeded; CrossBridge failed after it


def test_vllm_response_without_usage_reports_no_tokens(ai, telemetry, llm):
    """No usage block: CrossBridge says 0 tokens; the span and the token metric say nothing (unknown, not 0)."""
    llm.script("no_usage")
    response = _complete(_provider("vllm", llm), "deepseek-coder")
    assert response.token_usage.total_tokens == 0
    span = telemetry.span("chat deepseek-coder")
    assert not [k for k in span.attributes if k.startswith("gen_ai.usage.")]
    assert not _points(telemetry, genai.TOKEN_METRIC) and _points(telemetry, genai.DURATION_METRIC)


# -- metrics -----------------------------------------------------------------------------------------------

def test_token_and_duration_histograms_use_the_conventions_buckets(ai, telemetry, llm):
    """gen_ai.client.token.usage ({token}) and operation.duration (s) with the conventions' explicit boundaries."""
    _complete(_provider("openai", llm), "gpt-4o-mini")
    tokens = {p.attributes["gen_ai.token.type"]: p for p in _points(telemetry, genai.TOKEN_METRIC)}
    assert (tokens["input"].sum, tokens["output"].sum) == (12, 5)
    assert tuple(tokens["input"].explicit_bounds) == genai.TOKEN_BUCKETS
    assert tokens["input"].attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-08-06"
    [duration] = _points(telemetry, genai.DURATION_METRIC)
    assert tuple(duration.explicit_bounds) == genai.DURATION_BUCKETS
    assert duration.attributes["gen_ai.provider.name"] == "openai" and "error.type" not in duration.attributes
    units = {m.name: m.unit for rm in telemetry.metric_reader.get_metrics_data().resource_metrics
             for sm in rm.scope_metrics for m in sm.metrics}
    assert (units[genai.TOKEN_METRIC], units[genai.DURATION_METRIC], units[genai.COST_METRIC]) == (
        "{token}", "s", "{USD}")


def test_a_failed_call_is_measured_with_its_error_type(ai, telemetry, llm):
    """The duration of a failed call carries error.type; no tokens are recorded for it."""
    from core.ai.base import AuthenticationError

    llm.script("401")
    with pytest.raises(AuthenticationError):
        _complete(_provider("openai", llm), "gpt-4o-mini")
    [duration] = _points(telemetry, genai.DURATION_METRIC)
    assert duration.attributes["error.type"] == "core.ai.base.AuthenticationError"
    assert not _points(telemetry, genai.TOKEN_METRIC)


def test_cost_counter_and_run_total_add_up_per_provider_and_model(ai, telemetry, llm):
    """crossbridge.ai.cost per provider and model, and genai.total_cost() for the run, add the estimates."""
    first = _complete(_provider("openai", llm), "gpt-4o-mini")
    second = _complete(_provider("anthropic", llm), "claude-3-5-sonnet-20241022")
    _complete(_provider("ollama", llm), "llama3")
    by_model = {p.attributes["gen_ai.request.model"]: p.value for p in _points(telemetry, genai.COST_METRIC)}
    assert by_model == pytest.approx({"gpt-4o-mini": first.cost, "claude-3-5-sonnet-20241022": second.cost,
                                      "llama3": 0.0})
    assert genai.total_cost() == pytest.approx(first.cost + second.cost)
    assert genai.costs()[("anthropic", "claude-3-5-sonnet-20241022")] == pytest.approx(second.cost)


# -- content -----------------------------------------------------------------------------------------------

def test_by_default_no_prompt_or_completion_text_is_exported(instrument, telemetry, llm):
    """Default: neither the prompt nor the model's answer appears in any span, event or log record."""
    instrument(AIInstrumentor)
    _complete(_provider("openai", llm), "gpt-4o-mini")
    _complete(_provider("anthropic", llm), "claude-3-5-sonnet-20241022")
    exported = _exported(telemetry)
    assert "chat gpt-4o-mini" in exported
    assert "secret-prompt-text-4711" not in exported and fake_llm.REPLY.splitlines()[1] not in exported
    assert not [k for s in telemetry.spans() for k in s.attributes if k.startswith("gen_ai.") and "messages" in k]


def test_content_capture_true_puts_redacted_bounded_messages_on_the_span(instrument, telemetry, llm, monkeypatch):
    """=true: input/output messages as the conventions' JSON on the span, credentials masked, long text cut."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    instrument(AIInstrumentor)
    _complete(_provider("anthropic", llm), "claude-3-5-sonnet-20241022",
              prompt="log in with password=hunter2 " + "x" * 10_000)
    a = telemetry.span("chat claude-3-5-sonnet-20241022").attributes
    [user] = json.loads(a["gen_ai.input.messages"])
    text = user["parts"][0]["content"]
    assert user["role"] == "user" and "password=***" in text and "hunter2" not in text
    assert len(text) < genai.CONTENT_LIMIT + 40 and text.endswith("more characters]")
    assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "You migrate tests."}]
    [answer] = json.loads(a["gen_ai.output.messages"])
    assert answer["parts"][0]["content"] == fake_llm.REPLY and answer["finish_reason"] == "end_turn"


def test_event_only_with_the_opt_in_emits_a_log_event_and_no_span_content(instrument, telemetry, llm, monkeypatch):
    """gen_ai_latest_experimental + EVENT_ONLY: one gen_ai.client.inference.operation.details log event in the
    span's trace, and no message attributes on the span."""
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http,gen_ai_latest_experimental")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "EVENT_ONLY")
    instrument(AIInstrumentor)
    _complete(_provider("ollama", llm), "llama3")
    span = telemetry.span("chat llama3")
    assert not [k for k in span.attributes if k.startswith("gen_ai.") and k.endswith("messages")]
    [event] = [r for r in telemetry.logs() if r.event_name == "gen_ai.client.inference.operation.details"]
    assert event.trace_id == span.context.trace_id and event.span_id == span.context.span_id
    assert "secret-prompt-text-4711" in event.attributes["gen_ai.input.messages"]
    assert event.attributes["gen_ai.request.model"] == "llama3"


# -- rate limit ----------------------------------------------------------------------------------------------

def test_the_ai_rate_limit_makes_a_completion_wait_visibly(frozen_clock, instrument, telemetry, llm):
    """ai=1/0.2: the second completion waits for a token, with a rate_limit.wait event on its chat span."""
    instrument(AIInstrumentor, settings=load_settings({"CROSSBRIDGE_OTEL_RATE_LIMITS": "ai=1/0.2"}))
    provider = _provider("vllm", llm)
    _complete(provider, "deepseek-coder")
    _complete(provider, "deepseek-coder")
    first, second = sorted(telemetry.spans("chat deepseek-coder"), key=lambda s: s.start_time)
    assert not first.events
    [wait] = second.events
    assert (wait.name, wait.attributes["rate_limit.key"]) == ("rate_limit.wait", "ai")
    assert wait.attributes["rate_limit.wait_s"] == pytest.approx(0.2)


# -- the steps that ask --------------------------------------------------------------------------------------

def _orchestrator(llm, tmp_path):
    from core.ai.orchestrator import AIOrchestrator

    return AIOrchestrator({"providers": {"openai": {"api_key": "sk-test-key", "base_url": llm.base + "/v1"}}},
                          storage_path=tmp_path / "ai")


def _flaky_inputs():
    return {"test_name": "test_login", "test_file": "tests/test_login.py",
            "execution_history": [{"status": "passed", "duration": 1.2}, {"status": "failed", "duration": 3.4}]}


def test_a_skill_is_the_parent_step_and_sums_its_calls(ai, telemetry, llm, tmp_path):
    """execute_skill(FlakyAnalyzer): ai.skill.flaky_analyzer parents the chat span and carries its tokens and cost."""
    from core.ai.models import AIExecutionContext, ProviderType
    from core.ai.skills import FlakyAnalyzer

    output = _orchestrator(llm, tmp_path).execute_skill(
        FlakyAnalyzer(), _flaky_inputs(), AIExecutionContext(provider=ProviderType.OPENAI, allow_external_ai=True))
    assert output["explanation"] == fake_llm.REPLY
    skill = telemetry.span("ai.skill.flaky_analyzer")
    chat = telemetry.span("chat gpt-4o-mini")
    assert chat.parent.span_id == skill.context.span_id
    assert skill.attributes["gen_ai.prompt.name"] == "flaky_analysis"
    assert skill.attributes[A + "cost_usd"] == chat.attributes[A + "cost_usd"] > 0
    assert (skill.attributes[A + "calls"], skill.attributes[A + "input_tokens"]) == (1, 12)


def test_a_cost_limit_fails_the_skill_before_any_call(ai, telemetry, llm, tmp_path):
    """A budget below the estimate: CostLimitExceededError on the skill span, and no model call at all."""
    from core.ai.base import CostLimitExceededError
    from core.ai.models import AIExecutionContext, ProviderType
    from core.ai.skills import FlakyAnalyzer

    with pytest.raises(CostLimitExceededError):
        _orchestrator(llm, tmp_path).execute_skill(FlakyAnalyzer(), _flaky_inputs(), AIExecutionContext(
            provider=ProviderType.OPENAI, allow_external_ai=True, max_cost=0.000001))
    skill = telemetry.span("ai.skill.flaky_analyzer")
    assert skill.attributes["error.type"] == "core.ai.base.CostLimitExceededError"
    assert not telemetry.spans("chat gpt-4o-mini") and not llm.paths()


def test_exhausted_credits_fail_the_skill_before_any_call(ai, telemetry, llm, tmp_path):
    """A user without credits: CreditExhaustedError on the skill span; nothing is sent."""
    from core.ai.base import CreditExhaustedError
    from core.ai.models import AIExecutionContext, ProviderType
    from core.ai.skills import FlakyAnalyzer

    with pytest.raises(CreditExhaustedError):
        _orchestrator(llm, tmp_path).execute_skill(FlakyAnalyzer(), _flaky_inputs(), AIExecutionContext(
            provider=ProviderType.OPENAI, allow_external_ai=True, user="dana"))
    assert telemetry.span("ai.skill.flaky_analyzer").attributes["error.type"] == "core.ai.base.CreditExhaustedError"
    assert not llm.paths()


def test_embeddings_spans_read_usage_from_the_sdk(ai, telemetry, llm):
    """OpenAI embeddings: 'embeddings <model>', input tokens and response model from the SDK's response."""
    from core.embeddings.providers import OpenAIProvider

    vectors = OpenAIProvider(api_key="sk-test-key").embed_batch(["login", "logout"])
    span = telemetry.span("embeddings text-embedding-3-small")
    a = span.attributes
    assert span.kind == SpanKind.CLIENT and len(vectors) == a[A + "inputs"] == 2
    assert (a["gen_ai.operation.name"], a["gen_ai.usage.input_tokens"], a["gen_ai.embeddings.dimension.count"]) == (
        "embeddings", 8, 3)
    assert a["gen_ai.response.model"] == "text-embedding-3-small" and a[A + "requests"] == 1


def test_memory_embeddings_after_a_429_show_the_sdk_retry(ai, telemetry, llm):
    """core.memory's OpenAI embeddings: the model from its private field, a 429 retried by the SDK as an event."""
    from core.memory.embedding_provider import OpenAIEmbeddingProvider

    llm.script("429")
    OpenAIEmbeddingProvider(model="text-embedding-3-large", api_key="sk-test-key").embed(["login page"])
    span = telemetry.span("embeddings text-embedding-3-large")
    [event] = retry_events(span)
    assert event.attributes["error.type"] == "http_429" and span.attributes["retry.attempts"] == 2
    assert span.attributes["gen_ai.usage.input_tokens"] == 8


def test_hardened_provider_parents_the_call_when_its_layers_are_off(ai, telemetry, llm):
    """HardenedAIProvider with retry and rate limiting off calls through: ai.hardened.complete parents the chat."""
    from core.runtime.ai_integration import HardenedAIProvider

    hardened = HardenedAIProvider(_provider("vllm", llm), enable_rate_limiting=False, enable_retry=False,
                                  enable_health_checks=False)
    _complete(hardened, "deepseek-coder")
    step = telemetry.span("ai.hardened.complete")
    assert children(telemetry.spans(), step) == [telemetry.span("chat deepseek-coder")]
    assert step.attributes[A + "provider_class"] == "VLLMProvider" and step.attributes[A + "calls"] == 1


def test_hardened_provider_retry_layer_is_crossbridges_type_error(ai, telemetry, llm):
    """With its retry layer on, HardenedAIProvider raises CrossBridge's TypeError before any call (TARGETS §0.3)."""
    from core.runtime.ai_integration import HardenedAIProvider

    hardened = HardenedAIProvider(_provider("vllm", llm), enable_rate_limiting=False, enable_health_checks=False)
    with pytest.raises(TypeError, match="policy_name"):
        _complete(hardened, "deepseek-coder")
    assert telemetry.span("ai.hardened.complete").attributes["error.type"] == "TypeError"
    assert not telemetry.spans("chat deepseek-coder") and not llm.paths()


# -- the engine's promises -------------------------------------------------------------------------------------

def test_every_ai_target_is_patched_on_the_real_code(ai):
    """All rows find their callable in the real CrossBridge and SDKs: none missing, none failed."""
    import importlib

    for module in {t.module for t in AIInstrumentor.targets}:
        importlib.import_module(module)
    states = {(s.module, s.qualname): s.state.value for s in status.snapshot() if s.area == "ai"}
    assert len(states) == len(AIInstrumentor.targets)
    assert set(states.values()) == {"patched"}, states


def test_uninstrument_restores_providers_and_sdk_methods(instrument, telemetry, llm):
    """After uninstrument the providers' complete and the SDK's retry sleep are CrossBridge's/the SDK's own."""
    import openai._base_client
    from core.ai.providers import OpenAIProvider

    before = (OpenAIProvider.__dict__["complete"], openai._base_client.SyncAPIClient.__dict__["_sleep_for_retry"])
    AIInstrumentor().instrument(**telemetry.providers)
    assert OpenAIProvider.__dict__["complete"] is not before[0]
    AIInstrumentor().uninstrument()
    after = (OpenAIProvider.__dict__["complete"], openai._base_client.SyncAPIClient.__dict__["_sleep_for_retry"])
    assert after == before
    _complete(_provider("openai", llm), "gpt-4o-mini")
    assert not telemetry.spans()


# -- a migration with AI transformation, end to end on the real orchestrator ---------------------------------

def _ai_migration():
    """The fake Bitbucket's one Java test, migrated with AI transformation by Anthropic (the fake model)."""
    from core.orchestration import MigrationRequest, RepositoryAuth
    from core.orchestration.models import AIConfig, AIMode

    return MigrationRequest(
        repo_url="https://bitbucket.org/acme/demo", branch="main", target_branch="crossbridge/migration",
        auth=RepositoryAuth(auth_type="bitbucket_app_password", token="bb-token-1", username="u"),
        framework_config={"java_src_path": "src"}, max_workers=2, create_pr=False, use_ai=True,
        ai_config=AIConfig(mode=AIMode.PUBLIC_CLOUD, provider="anthropic", api_key="sk-ant-migration-key",
                           model="claude-3-5-sonnet-20241022"))


def test_migration_ai_transformation_is_step_and_chat_under_the_run(instrument, threads, telemetry, llm,
                                                                     fake_bitbucket):
    """A Bitbucket migration with use_ai (Anthropic): orchestration.migrate → transforming phase →
    ai.transform.step_definitions → 'chat <model>' with tokens and cost; no prompt text exported."""
    from core.orchestration import MigrationOrchestrator

    from crossbridge_otel.instrumentors.orchestration import OrchestrationInstrumentor

    instrument(OrchestrationInstrumentor)
    instrument(AIInstrumentor)
    orchestrator = MigrationOrchestrator()
    orchestrator.run(_ai_migration())
    assert orchestrator.ai_metrics["files_transformed"] == 1 and llm.paths() == ["/v1/messages"]
    run = telemetry.span("orchestration.migrate")
    transforming = telemetry.span("orchestration.phase.transforming")
    step = telemetry.span("ai.transform.step_definitions")
    chat = telemetry.span("chat claude-3-5-sonnet-20241022")
    assert transforming.parent.span_id == run.context.span_id
    assert step.parent.span_id == transforming.context.span_id and chat.parent.span_id == step.context.span_id
    assert step.attributes["crossbridge.category"] == "orchestration" and step.attributes[A + "source_file"] == (
        "LoginTest.java")
    assert chat.attributes["gen_ai.usage.input_tokens"] == 23 and chat.attributes[A + "cost_usd"] > 0
    assert step.attributes[A + "cost_usd"] == pytest.approx(orchestrator.ai_metrics["total_cost"])
    exported = _exported(telemetry)
    assert "expert in test automation" not in exported and "sk-ant-migration-key" not in exported


def test_a_failed_ai_transformation_is_the_step_error_and_crossbridge_falls_back(instrument, telemetry, llm,
                                                                                 fake_bitbucket):
    """The model refuses the key: the chat span is CrossBridge's AuthenticationError, the step returns None
    (ai_transformation_failed) and CrossBridge still transforms the file by its patterns."""
    from core.orchestration import MigrationOrchestrator

    instrument(AIInstrumentor)
    llm.script("401")
    orchestrator = MigrationOrchestrator()
    response = orchestrator.run(_ai_migration())
    assert len(response.files_transformed) == 1 and orchestrator.ai_metrics["files_transformed"] == 0
    step = telemetry.span("ai.transform.step_definitions")
    chat = telemetry.span("chat claude-3-5-sonnet-20241022")
    assert step.attributes["error.type"] == "ai_transformation_failed" and step.status.status_code == StatusCode.ERROR
    assert chat.attributes["error.type"] == "core.ai.base.AuthenticationError"
    assert chat.parent.span_id == step.context.span_id
    assert (step.attributes[A + "calls"], step.attributes[A + "cost_usd"]) == (1, 0.0)  # a call made, nothing paid


def test_a_contrib_openai_span_nests_under_ours(instrument, telemetry, llm):
    """With opentelemetry-instrumentation-openai-v2 loaded too, its span of the SDK call is a child of our chat
    span (one logical call, never two sibling roots)."""
    openai_v2 = pytest.importorskip("opentelemetry.instrumentation.openai_v2",
                                    reason="opentelemetry-instrumentation-openai-v2 is not installed")
    instrument(openai_v2.OpenAIInstrumentor)
    instrument(AIInstrumentor)
    _complete(_provider("openai", llm), "gpt-4o-mini")
    ours = [s for s in telemetry.spans() if s.instrumentation_scope.name == "crossbridge_otel.ai"]
    theirs = [s for s in telemetry.spans() if s.instrumentation_scope.name != "crossbridge_otel.ai"]
    assert len(ours) == 1 and len(theirs) == 1
    assert theirs[0].parent.span_id == ours[0].context.span_id
    assert theirs[0].context.trace_id == ours[0].context.trace_id
