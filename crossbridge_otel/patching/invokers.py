"""Invokers as data: what a row's call goes through, declared as small frozen values and built once at patch time.

A :class:`~crossbridge_otel.patching.targets.Target` lists its invokers outermost first::

    Target(..., invokers=(RateLimit("translation"), AfterCall(read_frameworks)))

takes a token of the ``translation`` bucket, then calls through and reads what the finished call knows. At patch
time the engine builds the chain innermost first (:func:`build_chain`): each :class:`InvokerSpec` becomes a plain
function ``invoke(original, args, kwargs, span) -> result`` (an :data:`Invoker`) that runs the next one, the last
one calling ``original``. Building may give nothing (``Retry`` with retries switched off, ``RateLimit`` of a key
without a bucket): the call then goes straight on. The per-call path runs only the built functions; the audit
(:mod:`crossbridge_otel.doctor.audit`) reads the specs on the rows.

The engine's own types are :class:`AfterCall` and :class:`BeforeCall`; the retry layer adds ``Retry``,
``RateLimit`` (:mod:`crossbridge_otel.retry`) and ``ObservedRetry`` (CrossBridge's own loops, observed); an area
adds a type of its own by subclassing :class:`InvokerSpec` and writing :meth:`~InvokerSpec.build`.

What a build returns runs on every call of its row: like the wrappers it guards itself inline (see
:mod:`crossbridge_otel.patching.wrapping`); what runs once (the build) or per operation may use ``contained``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from opentelemetry.metrics import Meter
from opentelemetry.trace import Span

from crossbridge_otel._guard import report_failure

if TYPE_CHECKING:
    from crossbridge_otel.patching.targets import Target

__all__ = ["AfterCall", "BeforeCall", "Invoker", "InvokerEnv", "InvokerSpec", "build_chain", "call_next"]

# What replaces the plain call: invoker(original, args, kwargs, span) -> result.
Invoker = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any], Span], Any]


@dataclass(frozen=True)
class InvokerEnv:
    """What the engine hands :meth:`InvokerSpec.build` at patch time.

    ``target`` is the row, ``settings`` the instrumentor's effective settings, ``meter`` its meter (injected
    provider), ``start_attributes`` the span's static attributes (a build may add to them: set once at span
    start, free on the call path), ``is_async`` whether the patched callable is a coroutine function.
    """

    target: Target
    area: str
    settings: Any
    meter: Meter
    start_attributes: dict[str, Any]
    is_async: bool = False


@dataclass(frozen=True)
class InvokerSpec:
    """Base of the invoker types: a frozen value on the row; :meth:`build` makes its per-call function."""

    # True for a type that calls the original itself and cannot hand the call on (it must be last in a row).
    innermost: ClassVar[bool] = False

    def build(self, env: InvokerEnv, inner: Invoker | None) -> Invoker | None:
        """The per-call function, running ``inner`` (``None``: the original) for the call itself; or ``inner``
        unchanged (or ``None``) when this invoker has nothing to do under these settings."""
        raise NotImplementedError


def build_chain(specs: Sequence[InvokerSpec], env: InvokerEnv) -> Invoker | None:
    """The invoker of a row: ``specs`` (outermost first) built innermost first; None for a plain call."""
    invoker: Invoker | None = None
    for spec in reversed(specs):
        invoker = spec.build(env, invoker)
    return invoker


def _call_original(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
    return original(*args, **kwargs)


def call_next(inner: Invoker | None) -> Invoker:
    """What a built invoker runs for the call itself: ``inner``, or the original when it is the last. (The two
    that run on the most rows, :class:`BeforeCall` and :class:`AfterCall`, test ``inner`` inline instead: one
    Python frame less per call.)"""
    return inner if inner is not None else _call_original


# (span, args, kwargs) and (span, args, kwargs, result): what a before/after reader gets.
BeforeFn = Callable[[Span, tuple[Any, ...], dict[str, Any]], None]
AfterFn = Callable[[Span, tuple[Any, ...], dict[str, Any], Any], None]


@dataclass(frozen=True)
class BeforeCall(InvokerSpec):
    """``prepare(span, args, kwargs)`` before the call (contained if it fails), then the call."""

    prepare: BeforeFn

    def build(self, env: InvokerEnv, inner: Invoker | None) -> Invoker:
        prepare, where = self.prepare, f"before {env.target.span}"

        def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
            try:
                prepare(span, args, kwargs)
            except Exception as exc:
                report_failure(where, exc)
            return original(*args, **kwargs) if inner is None else inner(original, args, kwargs, span)

        return invoke


@dataclass(frozen=True)
class AfterCall(InvokerSpec):
    """The call, then ``read(span, args, kwargs, result)`` adds what only the finished call knows (values
    CrossBridge decides inside the call); ``result`` is None when the call raised. Contained if it fails."""

    read: AfterFn

    def build(self, env: InvokerEnv, inner: Invoker | None) -> Invoker:
        read, where = self.read, f"after {env.target.span}"

        def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
            result = None
            try:
                result = original(*args, **kwargs) if inner is None else inner(original, args, kwargs, span)
                return result
            finally:
                try:
                    read(span, args, kwargs, result)
                except Exception as exc:
                    report_failure(where, exc)

        return invoke
