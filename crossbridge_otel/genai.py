"""OpenTelemetry GenAI semantic conventions, as the AI area emits them: metric instruments, the run's cost, content.

Conventions followed: the GenAI conventions as last released with the core semantic conventions (the attribute set
of ``opentelemetry-semantic-conventions`` 0.66b1, schema 1.44: ``gen_ai.provider.name``, ``gen_ai.usage.*``,
``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration``). They are all *Development*; this
distribution had no earlier GenAI output, so it emits these by default. ``OTEL_SEMCONV_STABILITY_OPT_IN``
containing ``gen_ai_latest_experimental`` switches ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` to the
contrib's enum (see :func:`content_capture`), as ``opentelemetry-util-genai`` does.

- :class:`GenAIMetrics`: ``gen_ai.client.token.usage`` (``{token}``) and ``gen_ai.client.operation.duration``
  (``s``) with the conventions' explicit bucket boundaries, given as the instrument's advisory (so no View is
  needed and a user's View still wins), and ``crossbridge.ai.cost`` (``{USD}``, CrossBridge's own estimate).
- :func:`total_cost` / :func:`costs`: the process's estimated spend so far, for summaries.
- :func:`content_capture` and :func:`messages_json`: prompts and completions are never captured unless asked;
  when they are, each text is redacted (:mod:`crossbridge_otel.redaction`) and cut to :data:`CONTENT_LIMIT`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.metrics import Meter

from crossbridge_otel.redaction import redact

__all__ = [
    "CONTENT_LIMIT", "COST_METRIC", "DURATION_BUCKETS", "DURATION_METRIC", "TOKEN_BUCKETS", "TOKEN_METRIC",
    "Capture", "GenAIMetrics", "content_capture", "costs", "instructions_json", "messages_json", "reset_costs",
    "total_cost",
]

TOKEN_METRIC = "gen_ai.client.token.usage"
DURATION_METRIC = "gen_ai.client.operation.duration"
COST_METRIC = "crossbridge.ai.cost"
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
CONTENT_LIMIT = 4096  # characters of one message text kept when content capture is on
_MAX_MESSAGES = 64
_CAPTURE_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_OPT_IN_VARIABLE = "OTEL_SEMCONV_STABILITY_OPT_IN"
# Attributes the conventions allow on the metrics (never ids, messages or other unbounded values).
_METRIC_KEYS = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
                "server.address", "server.port")

_log = logging.getLogger("crossbridge_otel")


class GenAIMetrics:
    """The GenAI client instruments of one meter (create once per instrumentor)."""

    def __init__(self, meter: Meter) -> None:
        self.tokens = meter.create_histogram(
            TOKEN_METRIC, unit="{token}", description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS)
        self.duration = meter.create_histogram(
            DURATION_METRIC, unit="s", description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        self.cost = meter.create_counter(
            COST_METRIC, unit="{USD}",
            description="Cost of CrossBridge's model calls in US dollars, as its providers' estimate_cost says")

    def record(self, attributes: Mapping[str, Any], duration_s: float, *, input_tokens: int | None = None,
               output_tokens: int | None = None, cost_usd: float | None = None) -> None:
        """One operation: its duration (with ``error.type`` if it failed), its tokens and cost when known."""
        base = {key: attributes[key] for key in _METRIC_KEYS if attributes.get(key) is not None}
        error = attributes.get("error.type")
        self.duration.record(duration_s, {**base, "error.type": error} if error else base)
        for kind, count in (("input", input_tokens), ("output", output_tokens)):
            if count is not None:
                self.tokens.record(count, {**base, "gen_ai.token.type": kind})
        if cost_usd is not None:
            provider, model = base.get("gen_ai.provider.name", ""), base.get("gen_ai.request.model", "")
            self.cost.add(cost_usd, {"gen_ai.provider.name": provider, "gen_ai.request.model": model})
            _add_cost(str(provider), str(model), cost_usd)


_cost_lock = threading.Lock()
_costs: dict[tuple[str, str], float] = {}


def _add_cost(provider: str, model: str, usd: float) -> None:
    with _cost_lock:
        _costs[(provider, model)] = _costs.get((provider, model), 0.0) + usd


def total_cost() -> float:
    """US dollars CrossBridge's model calls in this process cost so far, by its providers' ``estimate_cost``."""
    with _cost_lock:
        return sum(_costs.values())


def costs() -> dict[tuple[str, str], float]:
    """The same, per ``(gen_ai.provider.name, gen_ai.request.model)``."""
    with _cost_lock:
        return dict(_costs)


def reset_costs() -> None:
    """Forget the totals (tests)."""
    with _cost_lock:
        _costs.clear()


@dataclass(frozen=True)
class Capture:
    """Where prompt and completion text goes: span attributes, a log-based event, both or (default) nowhere."""

    span: bool = False
    event: bool = False

    @property
    def any(self) -> bool:
        return self.span or self.event


_ENUM = {"NO_CONTENT": Capture(), "SPAN_ONLY": Capture(span=True), "EVENT_ONLY": Capture(event=True),
         "SPAN_AND_EVENT": Capture(span=True, event=True)}


def content_capture(environ: Mapping[str, str] | None = None) -> Capture:
    """Read ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (once, at instrument time).

    Without ``gen_ai_latest_experimental`` in ``OTEL_SEMCONV_STABILITY_OPT_IN`` it is a boolean: ``true`` puts the
    content on the span. With it, it is the contrib's enum ``NO_CONTENT``/``SPAN_ONLY``/``EVENT_ONLY``/
    ``SPAN_AND_EVENT`` (``true`` still means ``SPAN_ONLY``). Anything else captures nothing, with one warning.
    """
    env = os.environ if environ is None else environ
    value = env.get(_CAPTURE_VARIABLE, "").strip()
    if not value or value.lower() in ("false", "0", "no", "off"):
        return Capture()
    if value.lower() in ("true", "1", "yes", "on"):
        return Capture(span=True)
    opted_in = "gen_ai_latest_experimental" in {p.strip() for p in env.get(_OPT_IN_VARIABLE, "").split(",")}
    if opted_in and value.upper() in _ENUM:
        return _ENUM[value.upper()]
    expected = "NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT or true/false" if opted_in else "true or false"
    _log.warning("crossbridge-otel: %s=%r ignored (expected %s); no content is captured",
                 _CAPTURE_VARIABLE, value, expected)
    return Capture()


def _text(value: Any, limit: int) -> str:
    text = redact(value if isinstance(value, str) else str(value))
    return text if len(text) <= limit else f"{text[:limit]}…[{len(text) - limit} more characters]"


def messages_json(messages: Iterable[tuple[str, Any]], *, finish_reason: str | None = None,
                  limit: int = CONTENT_LIMIT) -> str:
    """``(role, text)`` pairs as the conventions' message JSON (``gen_ai.input.messages``/``output.messages``):
    ``[{"role": ..., "parts": [{"type": "text", "content": ...}]}]``, each text redacted and cut to ``limit``."""
    rendered: list[dict[str, Any]] = []
    for index, (role, text) in enumerate(messages):
        if index == _MAX_MESSAGES:
            rendered.append({"role": "system", "parts": [{"type": "text", "content": "…[more messages]"}]})
            break
        message: dict[str, Any] = {"role": str(role), "parts": [{"type": "text", "content": _text(text, limit)}]}
        if finish_reason is not None:
            message["finish_reason"] = finish_reason
        rendered.append(message)
    return json.dumps(rendered, ensure_ascii=False)


def instructions_json(texts: Iterable[Any], limit: int = CONTENT_LIMIT) -> str:
    """System instructions given apart from the chat history (``gen_ai.system_instructions``)."""
    return json.dumps([{"type": "text", "content": _text(t, limit)} for t in texts], ensure_ascii=False)
