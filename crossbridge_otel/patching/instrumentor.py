"""The base instrumentor: applies an area's table of targets through post-import hooks.

Subclasses in ``crossbridge_otel.instrumentors`` only declare ``area``, ``category`` (with per-module
overrides in ``module_categories``) and ``targets``; this class does the rest, driven by that one table:

- ``instrument()`` registers a post-import hook per target module and patches modules already imported
  (also rebinding aliases made with ``from module import name`` before instrumentation started);
- ``uninstrument()`` restores the original objects exactly and drops hooks that have not fired;
- every step lands in the status registry that ``crossbridge-otel doctor`` prints.

Nothing here imports CrossBridge, and nothing here can fail the application: ``instrument()`` contains
its own failures (one area failing never stops the others).
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from crossbridge_otel._guard import contained, report_failure
from crossbridge_otel.patching import importhooks as hooks
from crossbridge_otel.patching import status
from crossbridge_otel.patching.invokers import InvokerEnv, build_chain
from crossbridge_otel.patching.status import State
from crossbridge_otel.patching.targets import Target
from crossbridge_otel.patching.wrapping import ORIGINAL_ATTR, Binding, make_counter, make_wrapper
from crossbridge_otel.settings import Settings
from crossbridge_otel.settings import load as load_settings
from crossbridge_otel.version import __version__

__all__ = ["DURATION_METRIC", "CrossBridgeInstrumentor"]

DURATION_METRIC = "crossbridge.operation.duration"
_ABSENT = object()


@dataclass
class _Patch:
    owner: Any
    name: str
    previous: Any  # the raw object found in owner.__dict__, or _ABSENT when it was inherited
    installed: Any


class CrossBridgeInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Base class of the per-area instrumentors; see the module docstring."""

    area: ClassVar[str] = ""
    category: ClassVar[str] = "general"
    module_categories: ClassVar[Mapping[str, str]] = {}
    targets: ClassVar[tuple[Target, ...]] = ()

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    # -- instrument -------------------------------------------------------------------------------------

    def _instrument(self, **kwargs: Any) -> None:
        with contained(f"instrumenting area {self.area}"):
            self._apply(**kwargs)

    def _apply(self, **kwargs: Any) -> None:
        settings: Settings = kwargs.get("settings") or load_settings(warn=False)
        self._patches: dict[Target, list[_Patch]] = {}
        self._hooks: list[hooks.Hook] = []
        self._bindings: list[Binding] = []
        if not settings.enabled:
            for target in self.targets:
                self._status(target, State.DISABLED, "CROSSBRIDGE_OTEL_ENABLED=false")
            return
        self._settings = settings
        tracer = trace_api.get_tracer(
            f"crossbridge_otel.{self.area}", __version__, kwargs.get("tracer_provider")
        )
        meter = metrics_api.get_meter(f"crossbridge_otel.{self.area}", __version__, kwargs.get("meter_provider"))
        self._tracer = tracer
        self._meter = meter
        self._histogram = meter.create_histogram(
            DURATION_METRIC, unit="s", description="Duration of CrossBridge operations traced by crossbridge-otel"
        )
        self._on_instrument(**kwargs)
        by_module: dict[str, list[Target]] = {}
        for target in self.targets:
            by_module.setdefault(target.module, []).append(target)
        for module_name, module_targets in by_module.items():
            self._watch(module_name, module_targets)

    def _on_instrument(self, **kwargs: Any) -> None:
        """Extra set-up for an area (subclasses); runs before the targets are watched."""

    def _watch(self, module_name: str, module_targets: list[Target]) -> None:
        already = module_name in sys.modules

        def on_import(module: ModuleType) -> None:
            for target in module_targets:
                self._patch_target(module, target, already)

        def on_error(exc: BaseException) -> None:
            reason = f"the module failed to import: {type(exc).__name__}: {exc}"
            for target in module_targets:
                self._status(target, State.FAILED, reason)

        def on_missing() -> None:
            reason = f"the application imported {module_name}, but no such module was found"
            for target in module_targets:
                self._status(target, State.MODULE_MISSING, reason)

        for target in module_targets:
            self._status(target, State.WAITING)
        hook = hooks.when_imported(module_name, on_import, on_error, on_missing)
        if hook is not None:
            self._hooks.append(hook)

    def category_of(self, target: Target) -> str:
        if target.category:
            return target.category
        best = ""
        for prefix in self.module_categories:
            if (target.module == prefix or target.module.startswith(prefix + ".")) and len(prefix) > len(best):
                best = prefix
        return self.module_categories[best] if best else self.category

    def _binding(self, target: Target, raw: Any = None) -> Binding:
        static = {
            "crossbridge.area": self.area,
            "crossbridge.category": self.category_of(target),
            "code.function.name": target.function_name,
        }
        env = InvokerEnv(target, self.area, self._settings, self._meter, static, inspect.iscoroutinefunction(raw))
        invoker = build_chain(target.invokers, env)
        binding = Binding(
            name=target.span, tracer=self._tracer, histogram=self._histogram, static=static, area=self.area,
            kind=target.kind, call_attributes=target.call_attributes,
            result_attributes=target.result_attributes, outcome=target.outcome, invoker=invoker,
        )
        self._bindings.append(binding)
        return binding

    def _patch_target(self, module: ModuleType, target: Target, already_imported: bool) -> None:
        try:
            owner: Any = module
            *path, name = target.qualname.split(".")
            for part in path:
                owner = getattr(owner, part)
            previous, own = _lookup(owner, name)
        except (AttributeError, KeyError) as exc:
            self._status(target, State.ATTRIBUTE_MISSING, f"{target.qualname} not found in {module.__name__}: {exc}")
            return
        try:
            if _is_ours(previous):
                self._status(target, State.PATCHED, "already wrapped (instrumented once)")
                return
            installed = self._wrap(previous, target, on_class=isinstance(owner, type))
            setattr(owner, name, installed)
            patches = [_Patch(owner, name, previous if own else _ABSENT, installed)]
            if already_imported and owner is module:
                patches += _rebind_aliases(module, previous, installed)
            self._patches.setdefault(target, []).extend(patches)
            detail = "patched on import"
            if already_imported:
                detail = "module was already imported when instrumentation started: patched in place"
                if len(patches) > 1:
                    detail += f", {len(patches) - 1} alias(es) rebound"
            self._status(target, State.PATCHED, detail)
        except Exception as exc:
            self._status(target, State.FAILED, f"{type(exc).__name__}: {exc}")
            report_failure(f"patching {target.function_name}", exc)

    def _wrap(self, raw: Any, target: Target, on_class: bool = False) -> Any:
        """What replaces ``raw``: the row decides (:meth:`Target.wrap`), from the engine's standard wrapper."""
        return target.wrap(raw, _Engine(self, on_class))

    def _standard(self, raw: Any, target: Target, on_class: bool) -> Any:
        if isinstance(raw, (staticmethod, classmethod)):
            return type(raw)(self._standard(raw.__func__, target, False))
        if isinstance(raw, type):
            # A function in place of a class would break isinstance() and subclassing in the application.
            raise TypeError(f"{target.function_name} is a class; target its __init__ or a method instead")
        if not callable(raw):
            raise TypeError(f"{target.function_name} is not callable ({type(raw).__name__})")
        binding = self._binding(target, raw)
        if target.mode == "count" and not self._settings.per_event_spans:
            wrapper = make_counter(raw, binding)
        else:
            wrapper = make_wrapper(raw, binding)
        if on_class and not hasattr(raw, "__get__"):
            # A builtin or partial stored on a class does not bind self; our plain-function wrapper would.
            return staticmethod(wrapper)
        return wrapper

    # -- uninstrument -----------------------------------------------------------------------------------

    def _uninstrument(self, **kwargs: Any) -> None:
        with contained(f"uninstrumenting area {self.area}"):
            for hook in getattr(self, "_hooks", []):
                hooks.cancel(hook)
            self._hooks = []
            for target, patches in getattr(self, "_patches", {}).items():
                for patch in reversed(patches):
                    _restore(patch)
                self._status(target, State.REMOVED)
            self._patches = {}
            for binding in getattr(self, "_bindings", []):
                binding.live = False  # wrappers kept alive elsewhere become pass-throughs
            self._bindings = []
            waiting = {
                (s.module, s.qualname) for s in status.snapshot()
                if s.area == self.area and s.state in (State.WAITING, State.MODULE_MISSING)
            }
            for target in self.targets:
                if (target.module, target.qualname) in waiting:
                    self._status(target, State.REMOVED, "hook dropped before the module was imported")
            self._on_uninstrument()

    def _on_uninstrument(self) -> None:
        """Undo :meth:`_on_instrument` (subclasses)."""

    def _status(self, target: Target, state: State, detail: str = "") -> None:
        status.record(self.area, target.module, target.qualname, target.span, state, detail)


class _Engine:
    """The engine as a row's :meth:`Target.wrap` sees it (see :class:`crossbridge_otel.patching.targets.Engine`)."""

    def __init__(self, instrumentor: CrossBridgeInstrumentor, on_class: bool) -> None:
        self._instrumentor = instrumentor
        self._on_class = on_class

    @property
    def settings(self) -> Settings:
        return self._instrumentor._settings

    def wrapper(self, raw: Any, target: Target) -> Any:
        return self._instrumentor._standard(raw, target, self._on_class)

    def binding(self, target: Target) -> Binding:
        return self._instrumentor._binding(target)


def _lookup(owner: Any, name: str) -> tuple[Any, bool]:
    """The raw attribute (descriptors unbound) and whether ``owner`` itself defines it."""
    if isinstance(owner, type):
        for klass in owner.__mro__:
            if name in klass.__dict__:
                return klass.__dict__[name], klass is owner
        raise AttributeError(f"type object {owner.__name__!r} has no attribute {name!r}")
    namespace = getattr(owner, "__dict__", {})
    if name not in namespace:
        raise AttributeError(f"{getattr(owner, '__name__', owner)!r} has no attribute {name!r}")
    return namespace[name], True


def _is_ours(raw: Any) -> bool:
    func = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
    return hasattr(func, ORIGINAL_ATTR)


def _rebind_aliases(module: ModuleType, previous: Any, installed: Any) -> list[_Patch]:
    """Point ``from module import name`` aliases made before instrumentation at the wrapper too.

    Only Python functions are followed: a builtin or a class (``len``, ``dict``) is shared by every module,
    so rebinding its "aliases" would patch unrelated code (and the SDK itself, recursively).
    """
    patches: list[_Patch] = []
    if not isinstance(previous, types.FunctionType):
        return patches
    for other in list(sys.modules.values()):
        if other is module or not isinstance(other, ModuleType):
            continue
        namespace = getattr(other, "__dict__", None)
        if not namespace:
            continue
        for alias, value in list(namespace.items()):
            if value is previous:
                setattr(other, alias, installed)
                patches.append(_Patch(other, alias, previous, installed))
    return patches


def _restore(patch: _Patch) -> None:
    current = patch.owner.__dict__.get(patch.name, _ABSENT) if hasattr(patch.owner, "__dict__") else _ABSENT
    if current is not patch.installed:
        return  # something else patched on top of us: leave it alone rather than drop their wrapper
    if patch.previous is _ABSENT:
        delattr(patch.owner, patch.name)
    else:
        setattr(patch.owner, patch.name, patch.previous)
