"""CLI instrumentation: each CrossBridge command invocation is one root span, ``cli.command``.

Enabled under ``opentelemetry-instrument`` as ``crossbridge_cli``,
its name in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``; in code::

    from crossbridge_otel.instrumentors.cli import CliInstrumentor
    CliInstrumentor().instrument(tracer_provider=...)

CrossBridge has two command lines, and both are covered (area and category ``cli``):

- ``python -m cli.main <command> ...`` (argparse). Run with ``-m``, ``cli/main.py`` is the ``__main__`` module,
  which no import hook can patch before it runs, so the span wraps the group dispatchers it calls in
  importable modules: ``cli.commands.coverage.execute_coverage_command`` (``coverage collect-isolated``,
  ``collect-batch``, ``show``, ``stats``, ``impact``, ``tests-for-class``, ``tests-for-method``) and
  ``cli.commands.drift_commands.execute_drift_command`` (``drift ...``). The command's return value is the
  process's exit code (``sys.exit(main())``): ``process.exit.code``, and non-zero is ERROR ``nonzero_exit``.
  The other argparse commands (``discover``, ``run``, ``extract``, ...) are functions of ``__main__`` itself:
  their CrossBridge work is traced, without a command span above it.
- ``crossbridge <command>`` (the console script ``cli.app:main``, Typer): ``typer.core.TyperCommand.invoke``
  for every Typer command; on ``typer.Exit`` the exit code is ``process.exit.code`` and a non-zero one is
  ERROR (``error.type`` the exit exception's class). Typer 0.29 vendors its own click, which
  opentelemetry-instrumentation-click does not see at all (and that instrumentation exports ``sys.argv``
  unredacted), hence this target.

Attributes: ``crossbridge.cli.command`` (the command words, e.g. ``coverage collect-isolated``,
``analyze logs``), ``crossbridge.cli.params`` (Typer: how many parameters were given a value), and
``process.command_line``: the process's ``sys.argv`` with credentials redacted (``--token x``,
``password=x``, ``user:secret@`` URLs), at most 1024 characters. Every span of the run (coverage,
translation, ...) is a descendant, so a whole command is one trace.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Span

from crossbridge_otel.patching.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.patching.invokers import Invoker, InvokerEnv, InvokerSpec, call_next
from crossbridge_otel.patching.readers import Prefix, arg, bounded
from crossbridge_otel.patching.targets import Attrs, Failure, Target

__all__ = ["CliInstrumentor"]

_P = Prefix("crossbridge.cli.")


def _command_line() -> Attrs:
    return {"process.command_line": bounded(shlex.join(str(a) for a in sys.argv), 1024)}


def _typer_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    ctx = arg(args, kwargs, 1, "ctx")
    params = getattr(ctx, "params", None) or {}
    words = []
    while ctx is not None and getattr(ctx, "parent", None) is not None:  # the root is the program, not a word
        words.append(str(getattr(ctx, "info_name", "")))
        ctx = ctx.parent
    if not words and ctx is not None:  # a single-command app: its own name
        words.append(str(getattr(ctx, "info_name", "")))
    return {_P.command: bounded(" ".join(reversed(words)), 64),
            _P.params: sum(value is not None for value in params.values()), **_command_line()}


@dataclass(frozen=True)
class ExitCode(InvokerSpec):
    """``process.exit.code`` from the exit exception a command raises (``typer.Exit``, click's ``Exit``)."""

    def build(self, env: InvokerEnv, inner: Invoker | None) -> Invoker:
        proceed = call_next(inner)

        def invoke(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
            try:
                return proceed(original, args, kwargs, span)
            except BaseException as exc:
                code = getattr(exc, "exit_code", None)
                if isinstance(code, int):
                    span.set_attribute("process.exit.code", code)
                raise

        return invoke


def _argparse_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    namespace = arg(args, kwargs, 0, "args")
    command = getattr(namespace, "command", None)
    sub = getattr(namespace, f"{command}_command", None) if isinstance(command, str) else None
    return {_P.command: bounded(" ".join(str(word) for word in (command, sub) if word), 64), **_command_line()}


def _exit_code(result: Any) -> Attrs:
    return {"process.exit.code": result} if type(result) is int else {}


def _nonzero(result: Any) -> Failure:
    if type(result) is int and result != 0:
        return ("nonzero_exit", f"the command returned exit code {result}")
    return None


def _argparse(module: str, qualname: str) -> Target:
    return Target(module, qualname, "cli.command", call_attributes=_argparse_call, result_attributes=_exit_code,
                  outcome=_nonzero)


class CliInstrumentor(CrossBridgeInstrumentor):
    """Traces CrossBridge's command lines: see the module docstring."""

    area = "cli"
    category = "cli"
    targets = (
        _argparse("cli.commands.coverage", "execute_coverage_command"),
        _argparse("cli.commands.drift_commands", "execute_drift_command"),
        Target("typer.core", "TyperCommand.invoke", "cli.command", call_attributes=_typer_call,
               invokers=(ExitCode(),)),
    )
