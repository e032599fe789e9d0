"""Token buckets for high-volume operations (AI-assisted translation calls, parallel test execution).

``CROSSBRIDGE_OTEL_RATE_LIMITS="translation=10/60,execution=4/1"`` gives the key ``translation`` a bucket of 10
tokens refilled over 60 seconds. A row with the invoker ``RateLimit("translation")`` takes one token
per call, *waiting* (never failing) when the bucket is empty; every wait is a ``rate_limit.wait`` span event
with ``rate_limit.key`` and ``rate_limit.wait_s``. A key without a configured bucket costs nothing (no
invoker). Buckets are shared per key across targets and threads, on a monotonic clock.

Compose with retries: ``invokers=(RateLimit("translation"), Retry("expensive"))`` takes a token once per call,
then runs the retry layer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Span

from crossbridge_otel._guard import report_failure
from crossbridge_otel.patching.invokers import Invoker, InvokerEnv, InvokerSpec, call_next

__all__ = ["RateLimit", "TokenBucket", "bucket", "parse_rate_limits", "reset_buckets"]

_log = logging.getLogger("crossbridge_otel")


class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``capacity / seconds`` per second."""

    def __init__(self, capacity: int, seconds: float) -> None:
        self.capacity = capacity
        self.rate = capacity / seconds
        self._tokens = float(capacity)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token; returns the seconds the caller must wait before using it (0 when available)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Take one token, sleeping as long as needed; returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            sleep(wait)
        return wait


def parse_rate_limits(text: str) -> dict[str, tuple[int, float]]:
    """``key=capacity/seconds,...`` → ``{key: (capacity, seconds)}``; bad entries are warned and skipped."""
    limits: dict[str, tuple[int, float]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, spec = item.partition("=")
        try:
            capacity_text, _, seconds_text = spec.partition("/")
            capacity, seconds = int(capacity_text), float(seconds_text)
            if capacity < 1 or seconds <= 0:
                raise ValueError("need capacity >= 1 and seconds > 0")
            limits[key.strip()] = (capacity, seconds)
        except ValueError as exc:
            _log.warning("crossbridge-otel: rate limit %r ignored (%s)", item, exc)
    return limits


_lock = threading.Lock()
_buckets: dict[tuple[str, int, float], TokenBucket] = {}


def bucket(key: str, capacity: int, seconds: float) -> TokenBucket:
    """The shared bucket of ``key`` with that size (a new size is a new bucket)."""
    with _lock:
        return _buckets.setdefault((key, capacity, seconds), TokenBucket(capacity, seconds))


def reset_buckets() -> None:
    """Forget every bucket (tests)."""
    with _lock:
        _buckets.clear()


@dataclass(frozen=True)
class RateLimit(InvokerSpec):
    """A token of ``key``'s bucket before each call, waiting while the bucket is empty (a ``rate_limit.wait``
    event); nothing at all when ``key`` has no bucket configured."""

    key: str

    def build(self, env: InvokerEnv, inner: Invoker | None) -> Invoker | None:
        limit = parse_rate_limits(env.settings.rate_limits).get(self.key)
        if limit is None:
            return inner
        proceed = call_next(inner)
        key = self.key
        shared = bucket(key, *limit)

        def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
            try:
                waited = shared.acquire()
                if waited > 0:
                    span.add_event("rate_limit.wait", {"rate_limit.key": key, "rate_limit.wait_s": waited})
            except Exception as exc:
                report_failure(f"rate limit {key}", exc)
            return proceed(original, args, kwargs, span)

        return invoke

