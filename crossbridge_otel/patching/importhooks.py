"""Post-import hooks: run a callable right after a named module finishes importing.

Semantics, plainly:

- :func:`when_imported` fires the hook at once if the module is already in ``sys.modules``; otherwise it
  fires right after the module's code has run for the first time, before ``import`` returns to the caller.
- A module whose own import fails (a ``SyntaxError`` in CrossBridge's ``cypress_hook.py``, a missing
  dependency) fires the hook's ``on_error`` with the exception instead, and the import fails exactly as it
  would have without us: same exception object.
- Hooks run behind the guard: an exception inside a hook is reported and never fails the application's
  import (the wart of wrapt's hooks).
- A watched module that no finder can locate (CrossBridge versions drift) calls the hook's ``on_missing``
  when the application tries to import it; the hook stays pending in case the module appears later.
- :func:`cancel` drops a hook that has not fired. Reloading a module does not fire hooks again.

The finder only steps in for watched module names and hands every other import straight back to Python.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from crossbridge_otel._guard import report_failure

__all__ = ["Hook", "cancel", "when_imported"]


class Hook:
    """A pending hook for one module; identity is the handle used to cancel it.

    A plain class (a dataclass costs about half a millisecond to create, at every start-up).
    """

    __slots__ = ("module", "on_error", "on_import", "on_missing")

    def __init__(
        self,
        module: str,
        on_import: Callable[[ModuleType], None],
        on_error: Callable[[BaseException], None] | None = None,
        on_missing: Callable[[], None] | None = None,
    ) -> None:
        self.module = module
        self.on_import = on_import
        self.on_error = on_error
        self.on_missing = on_missing

    def __repr__(self) -> str:
        return f"Hook({self.module!r})"


_lock = threading.RLock()
_pending: dict[str, list[Hook]] = {}


def when_imported(
    module: str,
    on_import: Callable[[ModuleType], None],
    on_error: Callable[[BaseException], None] | None = None,
    on_missing: Callable[[], None] | None = None,
) -> Hook | None:
    """Run ``on_import(module)`` now if imported, else after its import; returns the pending hook or None."""
    with _lock:
        loaded = sys.modules.get(module)
        if loaded is None:
            hook = Hook(module, on_import, on_error, on_missing)
            _pending.setdefault(module, []).append(hook)
            _install_finder()
            return hook
    _fire(hook=Hook(module, on_import, on_error), module=loaded)
    return None


def cancel(hook: Hook) -> bool:
    """Drop a hook that has not fired yet; True if it was still pending."""
    with _lock:
        hooks = _pending.get(hook.module, [])
        if hook in hooks:
            hooks.remove(hook)
            if not hooks:
                del _pending[hook.module]
            return True
        return False


def pending_modules() -> list[str]:
    """Module names that still have hooks waiting (for diagnostics)."""
    with _lock:
        return sorted(_pending)


def _fire(hook: Hook, module: ModuleType) -> None:
    try:
        hook.on_import(module)
    except Exception as exc:
        report_failure(f"post-import hook for {hook.module}", exc)


def _fail(hook: Hook, exc: BaseException) -> None:
    if hook.on_error is None:
        return
    try:
        hook.on_error(exc)
    except Exception as inner:
        report_failure(f"import-failure hook for {hook.module}", inner)


def _missing(name: str) -> None:
    with _lock:
        waiting = list(_pending.get(name, []))
    for hook in waiting:
        if hook.on_missing is None:
            continue
        try:
            hook.on_missing()
        except Exception as exc:
            report_failure(f"missing-module hook for {name}", exc)


def _take(name: str) -> list[Hook]:
    with _lock:
        return _pending.pop(name, [])


class _LoaderProxy(importlib.abc.Loader):
    """Runs the real loader, then the hooks; puts the real loader back on the module afterwards."""

    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._loader, attr)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        spec = module.__spec__
        if spec is not None:
            spec.loader = self._loader
        module.__loader__ = self._loader
        try:
            self._loader.exec_module(module)
        except BaseException as exc:
            for hook in _take(self._name):
                _fail(hook, exc)
            raise
        for hook in _take(self._name):
            _fire(hook, module)


class _Finder(importlib.abc.MetaPathFinder):
    """Asks the finders after it for a watched module's spec and wraps the loader it gets back."""

    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _pending or getattr(self._busy, "name", None) == fullname:
            return None
        self._busy.name = fullname
        try:
            spec = self._find_with_others(fullname, path, target)
        finally:
            self._busy.name = None
        if spec is None:
            _missing(fullname)
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _LoaderProxy(spec.loader, fullname)
        return spec

    def _find_with_others(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None
    ) -> importlib.machinery.ModuleSpec | None:
        for finder in list(sys.meta_path):
            if finder is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None


_finder = _Finder()


def _install_finder() -> None:
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
