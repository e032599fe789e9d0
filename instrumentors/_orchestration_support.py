"""The shapes of ``core.orchestration`` the plain target table cannot express, for :mod:`.orchestration`.

- :class:`PhaseSwitch` rows: CrossBridge's status update switches the phase children of the migration run being
  traced (:class:`PhasedRun` is the run's invoker); the row has no span of its own;
- :class:`JoinsRecursion` rows: a call made while the row's own span is current (the batch orchestrator retries a
  task by calling ``_execute_task`` from inside itself) runs inside that span;
- :func:`judged` / :func:`judgement`: attributes and the swallowed failure read from the arguments *and*
  the result (the outcome of a row only sees the result).

Each row type says how it is wrapped in its own :meth:`~crossbridge_otel.patching.targets.Target.wrap`.
Everything on the application's call path is behind the guard.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import Span

from crossbridge_otel._guard import guarded
from crossbridge_otel.patching.invokers import AfterCall, Invoker, InvokerEnv, InvokerSpec, call_next
from crossbridge_otel.patching.readers import arg, enum_text
from crossbridge_otel.patching.targets import Attrs, Engine, Failure, Target
from crossbridge_otel.patching.wrapping import SWITCH, Binding, mark_failure, stands_for

__all__ = ["PHASES", "JoinsRecursion", "PhaseSwitch", "PhasedRun", "hand_over", "joined", "judged", "judgement"]

PHASES = ("validating", "analyzing", "transforming", "generating", "committing")
JudgeFn = Callable[[tuple[Any, ...], dict[str, Any], Any], tuple[Attrs, Failure]]


# -- migration phases ----------------------------------------------------------------------------------

class _Phases:
    """The phase children of one traced run; used only on the run's own thread (see ``_current_run``)."""

    def __init__(self, run_span: Span) -> None:
        self.parent = trace_api.set_span_in_context(run_span)
        self.name: str | None = None
        self.span: Span | None = None
        self.token: object | None = None

    def switch(self, binding: Binding, status: Any) -> None:
        value = enum_text(status)
        if value == self.name:
            return
        self.close()
        if value in PHASES:
            self.name = value
            attributes = {**binding.static, "crossbridge.orchestration.phase": value}
            self.span = binding.tracer.start_span(f"orchestration.phase.{value}", context=self.parent,
                                                  attributes=attributes)
            self.token = context_api.attach(trace_api.set_span_in_context(self.span))

    def close(self, failure: Failure = None) -> None:
        span, token = self.span, self.token
        self.span, self.token, self.name = None, None, None
        if span is None:
            return
        if failure is not None:
            mark_failure(span, failure)
        if token is not None:
            context_api.detach(token)  # type: ignore[arg-type]
        span.end()


# The run being traced on this thread (pool threads never see it, so only the run's thread switches phases).
_current_run: ContextVar[_Phases | None] = ContextVar("crossbridge_otel_migration_run", default=None)


@dataclass(frozen=True)
class PhasedRun(InvokerSpec):
    """The run's invoker: its phases are switchable during the call; the one still open at the end gets
    ``outcome(response)`` (the failure CrossBridge swallowed, if any)."""

    outcome: Callable[[Any], Failure]

    def build(self, env: InvokerEnv, inner: Invoker | None) -> Invoker:
        proceed = call_next(inner)
        outcome = self.outcome

        @guarded("migration phase spans", None)
        def close(phases: _Phases, response: Any) -> None:
            phases.close(outcome(response) if response is not None else None)

        def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
            phases = _Phases(span)
            token = _current_run.set(phases)
            response = None
            try:
                response = proceed(original, args, kwargs, span)
                return response
            finally:
                _current_run.reset(token)
                close(phases, response)

        return invoke


@dataclass(frozen=True)
class PhaseSwitch(Target):
    """``_update_progress(self, callback, message, status, ...)``: switches the phase of the run being traced, then
    runs CrossBridge's own (so its ``[status] message`` log record is inside the new phase). No span of its own."""

    def wrap(self, raw: Any, engine: Engine) -> Any:
        if not callable(raw) or isinstance(raw, type):
            return engine.wrapper(raw, self)
        binding = engine.binding(self)
        switch = SWITCH
        move = guarded("migration phase spans", None)(_Phases.switch)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            phases = _current_run.get()
            if phases is not None and switch.on and binding.live:
                move(phases, binding, arg(args, kwargs, 3, "status"))
            return raw(*args, **kwargs)

        return stands_for(wrapper, raw)


# -- recursion joining the outer span -----------------------------------------------------------------

# The span of the outermost call of a JoinsRecursion row on this thread, set by its invoker.
joined: ContextVar[Span | None] = ContextVar("crossbridge_otel_joined", default=None)


@dataclass(frozen=True)
class _Joins(InvokerSpec):
    """Makes the row's span the one a recursive call joins, for the duration of the call."""

    def build(self, env: InvokerEnv, inner: Invoker | None) -> Invoker:
        proceed = call_next(inner)

        def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
            token = joined.set(span)
            try:
                return proceed(original, args, kwargs, span)
            finally:
                joined.reset(token)

        return invoke


@dataclass(frozen=True)
class JoinsRecursion(Target):
    """A row whose calls made while its own span is current (a recursion) run inside that span, untraced."""

    def wrap(self, raw: Any, engine: Engine) -> Any:
        if not callable(raw) or isinstance(raw, type):
            return engine.wrapper(raw, self)
        traced = engine.wrapper(raw, dataclasses.replace(self, invokers=(_Joins(), *self.invokers)))
        current = trace_api.get_current_span

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            outer = joined.get()
            if outer is not None and outer is current():
                return raw(*args, **kwargs)
            return traced(*args, **kwargs)

        return stands_for(wrapper, raw)


# -- judged calls ---------------------------------------------------------------------------------------

# A failure read by an invoker, handed to the outcome of the same call (same thread, right after it).
_judged_failure: ContextVar[Failure] = ContextVar("crossbridge_otel_judged_failure", default=None)


def judged(judge: JudgeFn) -> AfterCall:
    """The invoker of a judged row: ``judge(args, kwargs, result)`` gives attributes and the failure for
    :func:`judgement`."""
    return AfterCall(functools.partial(_judge, judge))


def _judge(judge: JudgeFn, span: Span, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    attrs, failure = judge(args, kwargs, result)
    span.set_attributes({k: v for k, v in attrs.items() if v is not None})
    hand_over(failure)


def hand_over(failure: Failure) -> None:
    """The failure the outcome of this call will report (for invokers that judge by themselves)."""
    _judged_failure.set(failure)


def judgement(result: Any) -> Failure:
    """The row's outcome: the failure its invoker handed over (then forgotten)."""
    failure = _judged_failure.get()
    _judged_failure.set(None)
    return failure
