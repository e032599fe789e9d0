"""CLI instrumentation: each ``crossbridge`` command invocation (Typer on click) is one root span.

Enabled by the ``crossbridge_cli`` entry point under ``opentelemetry-instrument``; in code::

    from crossbridge_otel.instrumentors.cli import CliInstrumentor
    CliInstrumentor().instrument(tracer_provider=...)

Why not only opentelemetry-instrumentation-click: it traces instances of ``click.Command`` itself and
skips subclasses, and every Typer command is a ``typer.core.TyperCommand``; it also exports ``sys.argv``
unredacted as ``process.command_args``. It stays loaded for plain click commands; Typer commands get:

- ``cli.command`` (``TyperCommand.invoke``, category ``cli``): ``crossbridge.cli.command`` (the command
  name, e.g. ``translate``), ``crossbridge.cli.params`` (how many parameters were given a value), and on
  ``typer.Exit`` / ``click.exceptions.Exit`` ``process.exit.code``. A non-zero exit is ERROR
  (``error.type`` the exit exception's class). Every span of the run (translation, execution, ...) is a
  descendant, so a whole ``crossbridge translate ...`` is one trace.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span

from crossbridge_otel.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.targets import Attrs, Invoker, InvokerEnv, Target, arg

from ._support import bounded

__all__ = ["CliInstrumentor"]

_P = "crossbridge.cli."


def _call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    ctx = arg(args, kwargs, 1, "ctx")
    params = getattr(ctx, "params", None) or {}
    return {_P + "command": bounded(getattr(ctx, "info_name", None), 64),
            _P + "params": sum(value is not None for value in params.values())}


def _exit_invoker(target: Target, env: InvokerEnv) -> Invoker | None:
    def invoke(original: Any, args: tuple[Any, ...], kwargs: dict[str, Any], span: Span) -> Any:
        try:
            return original(*args, **kwargs)
        except BaseException as exc:
            code = getattr(exc, "exit_code", None)
            if isinstance(code, int):
                span.set_attribute("process.exit.code", code)
            raise

    return invoke


class CliInstrumentor(CrossBridgeInstrumentor):
    """Traces CrossBridge's Typer CLI: see the module docstring."""

    area = "cli"
    category = "cli"
    targets = (
        Target("typer.core", "TyperCommand.invoke", "cli.command", call_attributes=_call, invoker=_exit_invoker),
    )
