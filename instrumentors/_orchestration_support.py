"""The shapes of ``core.orchestration`` the plain target table cannot express, for :mod:`.orchestration`.

- :class:`OrchestrationTarget` declares them on the row (``shape=``), read by ``OrchestrationInstrumentor._wrap``;
- ``shape="phases"`` (:func:`phase_switching`): CrossBridge's status update switches the phase children of the
  migration run being traced (:func:`phased_run` is the run's invoker); it has no span of its own;
- ``shape="joins_recursion"`` (:func:`joining`): a call made while the row's own span is current (the batch
  orchestrator retries a task by calling ``_execute_task`` from inside itself) runs inside that span;
- :func:`judged` / :func:`judgement`: attributes and the swallowed failure read from the arguments *and*
  the result (the outcome of a row only sees the result).

Everything on the application's call path is behind the guard.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import Span

from crossbridge_otel._guard import report_failure
from crossbridge_otel.patching.targets import Attrs, Failure, Invoker, InvokerEnv, Target, arg
from crossbridge_otel.patching.wrapping import ORIGINAL_ATTR, SWITCH, Binding, mark_failure

from ._support import after_call, enum_value

__all__ = ["PHASES", "OrchestrationTarget", "joined", "joining", "judged", "judgement", "phase_switching",
           "phased_run"]

PHASES = ("validating", "analyzing", "transforming", "generating", "committing")
JudgeFn = Callable[[tuple[Any, ...], dict[str, Any], Any], tuple[Attrs, Failure]]


@dataclass(frozen=True)
class OrchestrationTarget(Target):
    """A row whose shape the plain table cannot express (see the module docstring): ``shape`` is
    ``"phases"`` or ``"joins_recursion"``."""

    shape: str = ""


# -- migration phases ----------------------------------------------------------------------------------

class _Phases:
    """The phase children of one traced run; used only on the run's own thread (see ``_current_run``)."""

    def __init__(self, run_span: Span) -> None:
        self.parent = trace_api.set_span_in_context(run_span)
        self.name: str | None = None
        self.span: Span | None = None
        self.token: object | None = None

    def switch(self, binding: Binding, status: Any) -> None:
        value = str(enum_value(status) or "").lower()
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


def phased_run(outcome: Callable[[Any], Failure]) -> Callable[[Target, InvokerEnv], Invoker]:
    """The run's invoker: its phases are switchable during the call; the one still open at the end gets
    ``outcome(response)`` (the failure CrossBridge swallowed, if any)."""

    def factory(target: Target, env: InvokerEnv) -> Invoker:
        def invoke(original: Any, args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
            phases = _Phases(span)
            token = _current_run.set(phases)
            response = None
            try:
                response = original(*args, **kwargs)
                return response
            finally:
                _current_run.reset(token)
                try:
                    phases.close(outcome(response) if response is not None else None)
                except Exception as exc:
                    report_failure("migration phase spans", exc)

        return invoke

    return factory


def phase_switching(raw: Callable[..., Any], binding: Binding) -> Callable[..., Any]:
    """``_update_progress(self, callback, message, status, ...)``: switch the phase, then CrossBridge's own (so
    its ``[status] message`` log record is inside the new phase)."""
    switch = SWITCH

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        phases = _current_run.get()
        if phases is not None and switch.on and binding.live:
            try:
                phases.switch(binding, arg(args, kwargs, 3, "status"))
            except Exception as exc:
                report_failure("migration phase spans", exc)
        return raw(*args, **kwargs)

    functools.update_wrapper(wrapper, raw)
    setattr(wrapper, ORIGINAL_ATTR, raw)
    return wrapper


# -- recursion joining the outer span -----------------------------------------------------------------

# The span of the outermost call of a joins_recursion row on this thread, set by that row's invoker.
joined: ContextVar[Span | None] = ContextVar("crossbridge_otel_joined", default=None)


def joining(raw: Callable[..., Any], traced: Callable[..., Any]) -> Callable[..., Any]:
    """``traced`` (the span wrapper), except for a call made while the span in :data:`joined` is current."""
    current = trace_api.get_current_span

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        outer = joined.get()
        if outer is not None and outer is current():
            return raw(*args, **kwargs)
        return traced(*args, **kwargs)

    functools.update_wrapper(wrapper, raw)
    setattr(wrapper, ORIGINAL_ATTR, raw)
    return wrapper


# -- judged calls ---------------------------------------------------------------------------------------

# A failure read by an invoker, handed to the outcome of the same call (same thread, right after it).
_judged_failure: ContextVar[Failure] = ContextVar("crossbridge_otel_judged_failure", default=None)


def judged(judge: JudgeFn) -> Callable[[Target, InvokerEnv], Invoker]:
    """Invoker factory: ``judge(args, kwargs, result)`` gives attributes and the failure for :func:`judgement`."""

    def read(span: Span, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        attrs, failure = judge(args, kwargs, result)
        span.set_attributes({k: v for k, v in attrs.items() if v is not None})
        hand_over(failure)

    return after_call(read)


def hand_over(failure: Failure) -> None:
    """The failure the outcome of this call will report (for invokers that judge by themselves)."""
    _judged_failure.set(failure)


def judgement(result: Any) -> Failure:
    """The row's outcome: the failure its invoker handed over (then forgotten)."""
    failure = _judged_failure.get()
    _judged_failure.set(None)
    return failure
