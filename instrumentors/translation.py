"""Translation instrumentation: CrossBridge's translator ``core.translation.pipeline.TranslationPipeline``.

Enabled under ``opentelemetry-instrument`` as ``crossbridge_translation``,
its name in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``; in code::

    from crossbridge_otel.instrumentors.translation import TranslationInstrumentor
    TranslationInstrumentor().instrument(tracer_provider=..., meter_provider=...)

Every span carries ``crossbridge.area=translation``, ``crossbridge.category=migration`` and
``code.function.name``. Attribute names are short for ``crossbridge.translation.<name>``. What is traced:

- ``translation.setup`` (``TranslationPipeline.__init__``): ``source_framework``, ``target_framework``,
  ``parser``, ``generator`` (class names). A source framework containing "robot" makes CrossBridge import
  its missing ``robot_parser``: the ``ModuleNotFoundError`` is recorded and re-raised unchanged.
- ``translation.translate`` (``translate``): ``source_bytes``, ``source_file`` (file name only),
  ``source_framework`` / ``target_framework`` *actually used*, ``parser``, ``generator``, then ``success``,
  ``intent``, ``confidence``, ``actions``, ``assertions``, ``idioms_applied``, ``todos``, ``warnings``,
  ``errors``, ``target_bytes``. ``success`` false → ERROR ``translation_failed`` with CrossBridge's first
  error (``Generator cannot handle intent type: IntentType.UI``, ``Translation error: ...``).
- ``translation.translate_file`` (``translate_file``): ``source_file``, the frameworks used, the same
  result attributes. CrossBridge's bug (it passes the path as the *source framework* and leaves
  ``result.source_file`` empty) is shown as it is: the path never becomes ``source_framework``; the flag
  ``source_framework_is_path=true`` is set on this span and on the inner ``translation.translate``.
- ``translation.translate_batch`` (``translate_batch``): ``files``, ``succeeded``, ``failed``; any failed
  file → ``translation_failed`` (how many, and the first error).
- ``translation.hooks.integrate`` (``MigrationHookIntegrator.integrate_hooks``, which never raises):
  ``target_framework``, ``migrated_files``, then ``hooks_enabled``, ``hook_type`` (``pytest_plugin``,
  ``robot_listener``, ...), ``hook_files`` (configuration files it names), ``updated_files`` (Robot files it
  edited), or ``hooks_reason``. ``{"enabled": False, "reason": "unsupported_framework" |
  "integration_method_missing" | "integration_error"}`` → ERROR with that reason as ``error.type`` (and
  CrossBridge's error text); ``disabled_by_config`` is the user's choice, not an error.

Source and generated code are never attributes: only their sizes and counts.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.trace import Span

from crossbridge_otel.patching.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.patching.invokers import AfterCall
from crossbridge_otel.patching.readers import Prefix, arg, bounded, enum_value, fields, file_name, size
from crossbridge_otel.patching.targets import Attrs, Failure, Target
from crossbridge_otel.retry.ratelimit import RateLimit

__all__ = ["TranslationInstrumentor"]

_P = Prefix("crossbridge.translation.")
_PIPELINE = "core.translation.pipeline"
_FLAG = _P.source_framework_is_path


def _looks_like_path(value: Any) -> bool:
    """True for a string that is a file path rather than a framework name (``translate_file``'s bug)."""
    if not isinstance(value, str) or not value:
        return False
    return "/" in value or "\\" in value or os.path.splitext(value)[1] != ""


def _frameworks(span: Span, pipeline: Any, source_argument: Any = None) -> None:
    """The frameworks and the parser/generator the pipeline really used (set after the call)."""
    config = getattr(pipeline, "config", None)
    parser = getattr(pipeline, "parser", None)
    generator = getattr(pipeline, "generator", None)
    source = getattr(config, "source_framework", None) if config is not None else None
    if parser is not None and not source:
        source = getattr(parser, "framework", None)
    if not source:
        source = source_argument
    target = getattr(config, "target_framework", None) if config is not None else None
    if generator is not None and not target:
        target = getattr(generator, "framework", None)
    path = _looks_like_path(source)  # translate_file's bug: the path became the source framework
    attrs = {_P.source_framework_is_path: True if path else None,
             _P.source_framework: bounded(source, 64) if source and not path else None,
             _P.target_framework: bounded(target, 64) if target else None,
             _P.parser: type(parser).__name__ if parser is not None else None,
             _P.generator: type(generator).__name__ if generator is not None else None}
    span.set_attributes({key: value for key, value in attrs.items() if value is not None})


def _setup_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    config = arg(args, kwargs, 1, "config")
    return {_P.source_framework: bounded(getattr(config, "source_framework", None), 64),
            _P.target_framework: bounded(getattr(config, "target_framework", None), 64)}


def _setup_after(span: Span, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    _frameworks(span, args[0])


def _translate_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    code = arg(args, kwargs, 1, "source_code")
    source_framework = arg(args, kwargs, 2, "source_framework")
    source_file = arg(args, kwargs, 4, "source_file", "") or None
    path = _looks_like_path(source_framework)
    return {_P.source_bytes: len(code) if isinstance(code, str) else None, _P.source_framework_is_path: path or None,
            _P.source_file: file_name(source_file or (source_framework if path else None))}


def _translate_after(span: Span, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    _frameworks(span, args[0], arg(args, kwargs, 2, "source_framework"))


_RESULT = fields(_P, "success", "confidence", "idioms_applied", actions="actions_translated",
                 assertions="assertions_translated")


def _result_attrs(result: Any) -> Attrs:
    intent = getattr(result, "intent", None)
    code = getattr(result, "target_code", None)
    return {
        **_RESULT(result),
        _P.intent: enum_value(getattr(intent, "test_type", None)) if intent is not None else None,
        _P.todos: size(getattr(result, "todos", None)), _P.warnings: size(getattr(result, "warnings", None)),
        _P.errors: size(getattr(result, "errors", None)), _P.target_bytes: len(code) if isinstance(code, str) else None,
    }


def _result_outcome(result: Any) -> Failure:
    if getattr(result, "success", True):
        return None
    errors = getattr(result, "errors", None) or []
    return "translation_failed", (bounded(errors[0], 512) or "") if errors else "the translation was not successful"


def _file_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_P.source_file: file_name(arg(args, kwargs, 1, "source_file"))}


def _file_after(span: Span, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    path = arg(args, kwargs, 1, "source_file")
    _frameworks(span, args[0])
    if result is not None and path is not None and getattr(result, "source_file", None) != str(path):
        span.set_attribute(_FLAG, True)  # the file was not passed as source_file: CrossBridge's bug


def _batch_result(results: Any) -> Attrs:
    ok = sum(bool(getattr(r, "success", False)) for r in results or [])
    return {_P.succeeded: ok, _P.failed: (size(results) or 0) - ok}


def _batch_outcome(results: Any) -> Failure:
    failed = [r for r in results or [] if not getattr(r, "success", False)]
    if not failed:
        return None
    errors = getattr(failed[0], "errors", None) or ["unsuccessful"]
    return "translation_failed", f"{len(failed)} of {len(results)} files failed: {bounded(errors[0], 400)}"


def _hooks_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_P.target_framework: bounded(arg(args, kwargs, 1, "target_framework"), 64),
            _P.migrated_files: size(arg(args, kwargs, 3, "migrated_files"))}


_HOOK_FILES = ("config_file", "ini_file", "support_file")


def _hooks_result(result: Any) -> Attrs:
    if not isinstance(result, dict):
        return {}
    return {_P.hooks_enabled: bool(result.get("enabled")), _P.hooks_reason: bounded(result.get("reason"), 64),
            _P.hook_type: bounded(result.get("type"), 64),
            _P.hook_files: sum(bool(result.get(key)) for key in _HOOK_FILES) if result.get("enabled") else None,
            _P.updated_files: size(result.get("updated_files"))}


def _hooks_outcome(result: Any) -> Failure:
    if not isinstance(result, dict) or result.get("enabled") or result.get("reason") == "disabled_by_config":
        return None
    reason = str(result.get("reason") or "hooks_not_integrated")
    detail = result.get("error") or result.get("framework") or reason
    return reason, bounded(f"{reason}: {detail}", 512) or reason


class TranslationInstrumentor(CrossBridgeInstrumentor):
    """Traces ``core.translation``: see the module docstring for the table."""

    area = "translation"
    category = "migration"
    targets = (
        Target(_PIPELINE, "TranslationPipeline.__init__", "translation.setup", call_attributes=_setup_call,
               invokers=(AfterCall(_setup_after),)),
        Target(_PIPELINE, "TranslationPipeline.translate", "translation.translate", call_attributes=_translate_call,
               result_attributes=_result_attrs, outcome=_result_outcome,
               invokers=(RateLimit("translation"), AfterCall(_translate_after))),
        Target(_PIPELINE, "TranslationPipeline.translate_file", "translation.translate_file",
               call_attributes=_file_call, result_attributes=_result_attrs, outcome=_result_outcome,
               invokers=(AfterCall(_file_after),)),
        Target(_PIPELINE, "TranslationPipeline.translate_batch", "translation.translate_batch",
               call_attributes=lambda a, kw: {_P.files: size(arg(a, kw, 1, "source_files"))},
               result_attributes=_batch_result, outcome=_batch_outcome),
        Target("core.translation.migration_hooks", "MigrationHookIntegrator.integrate_hooks",
               "translation.hooks.integrate", call_attributes=_hooks_call, result_attributes=_hooks_result,
               outcome=_hooks_outcome),
    )
