"""The CrossBridge log bridge: where :class:`~crossbridge_otel.logs.handler.BridgeHandler` is attached.

CrossBridge logs in two ways, and the bridge meets each where its records go:

- ``core.logging.get_logger(name, category)`` returns a ``CrossBridgeLogger`` wrapping the stdlib logger
  ``crossbridge.<name>`` with ``propagate = False``: a root handler never sees these records. The bridge
  attaches one handler, carrying the wrapper's category, to each such stdlib logger: to the ones already in
  ``core.logging.logger._loggers`` when that module is imported (a post-import hook), and to every later one
  by wrapping ``CrossBridgeLogger.__init__`` (the first wrapper made for a name wins, as in CrossBridge).
- Plain ``logging.getLogger(__name__)`` loggers under ``core``, ``adapters`` and ``services`` propagate: one
  handler on each of those three package loggers exports them, with the category of their module
  (:data:`MODULE_CATEGORIES`). Nothing is added to the root logger, so ``setup_logging`` and
  ``configure_secure_logging`` (whose filter raises with two or more root handlers) work as before.

Levels are never changed and no logging method is wrapped, so a record below its logger's level costs
exactly what it did. A record is exported at most once even when it passes several of our handlers, and
records of the ``opentelemetry`` and ``crossbridge_otel`` loggers are never bridged. When root has no
handlers, a WARNING+ record that only our handler saw still reaches ``logging.lastResort`` as before.
:meth:`LogBridge.uninstall` removes every handler and restores ``CrossBridgeLogger.__init__``.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from opentelemetry._logs import LoggerProvider

from crossbridge_otel._guard import contained
from crossbridge_otel.logs.handler import BridgeHandler
from crossbridge_otel.patching import importhooks as hooks

__all__ = ["LOGGER_MODULE", "MODULE_CATEGORIES", "PACKAGES", "LogBridge", "category_of_module"]

LOGGER_MODULE = "core.logging.logger"
PACKAGES = ("core", "adapters", "services")
_MARK = "__crossbridge_otel_original__"

# The CrossBridge LogCategory of a module (TARGETS.md §2), longest prefix wins; "general" otherwise.
# Packages TARGETS does not list are our choice: the sidecar observer's modules log as "observer",
# adapters as "adapter", core.execution.orchestration as its orchestrator does.
MODULE_CATEGORIES: Mapping[str, str] = {
    "core.profiling": "performance",
    "core.runtime.profiling_integration": "performance",
    "core.coverage": "testing",
    "core.runtime.coverage_integration": "testing",
    "core.runtime.flaky_integration": "testing",
    "core.coverage.repository": "persistence",
    "core.coverage.functional_repository": "persistence",
    "core.runtime.database_integration": "persistence",
    "core.execution": "execution",
    "core.runtime.execution_integration": "execution",
    "core.execution.orchestration": "orchestration",
    "core.orchestration.orchestrator": "orchestration",
    "services.sidecar_api": "orchestration",
    "services.sidecar_client": "orchestration",
    "core.translation.migration_hooks": "migration",
    "core.repo.bitbucket": "governance",
    "core.orchestration.batch": "general",
    "core.runtime.ai_integration": "ai",
    "core.runtime.embedding_integration": "ai",
    "core.observability": "observer",
    "core.sidecar": "observer",
    "adapters": "adapter",
}


def category_of_module(name: str) -> str:
    """The category of a module (or logger) name: its longest prefix in :data:`MODULE_CATEGORIES`."""
    while name:
        found = MODULE_CATEGORIES.get(name)
        if found is not None:
            return found
        name = name.rpartition(".")[0]
    return "general"


class LogBridge:
    """Installs and removes the bridge; ``logger_provider=None`` uses the global provider.

    ``on_hooked(count)`` is told when ``CrossBridgeLogger`` has been patched and ``count`` existing
    loggers bridged (the instrumentor reports it to the doctor).
    """

    def __init__(
        self, logger_provider: LoggerProvider | None = None, on_hooked: Callable[[int], None] | None = None
    ) -> None:
        self._provider = logger_provider
        self._on_hooked = on_hooked
        self._lock = threading.Lock()
        self._attached: list[tuple[logging.Logger, BridgeHandler]] = []
        self._patched: list[tuple[type, Any, Any]] = []  # (class, original __init__, our __init__)
        self._hook: hooks.Hook | None = None
        self._wrapper_file: str | None = None
        self.installed = False

    def install(self) -> None:
        """Attach to the package loggers now, to CrossBridge's loggers when ``core.logging.logger`` loads."""
        if self.installed:
            return
        self.installed = True
        for package in PACKAGES:
            handler = BridgeHandler(self._provider, categories=category_of_module, last_resort=True)
            self._attach(logging.getLogger(package), handler)
        self._hook = hooks.when_imported(LOGGER_MODULE, self._on_logger_module)

    def uninstall(self) -> None:
        """Remove every handler we added and restore ``CrossBridgeLogger.__init__``."""
        if self._hook is not None:
            hooks.cancel(self._hook)
            self._hook = None
        with self._lock:
            attached, self._attached = self._attached, []
            patched, self._patched = self._patched, []
        for logger, handler in attached:
            logger.removeHandler(handler)
        for cls, original, ours in patched:
            if cls.__dict__.get("__init__") is ours:  # someone wrapped on top of us: leave theirs alone
                setattr(cls, "__init__", original)  # noqa: B010 (mypy rejects assigning __init__)
        self.installed = False

    def attached_loggers(self) -> list[str]:
        """Names of the stdlib loggers that carry a bridge handler (for doctor and tests)."""
        with self._lock:
            return [logger.name for logger, _ in self._attached]

    # -- CrossBridgeLogger --------------------------------------------------------------------------

    def _on_logger_module(self, module: ModuleType) -> None:
        cls = module.CrossBridgeLogger
        original = cls.__dict__["__init__"]
        self._wrapper_file = original.__code__.co_filename
        if not hasattr(original, _MARK):
            ours = self._wrap_init(original)
            setattr(cls, "__init__", ours)  # noqa: B010 (mypy rejects assigning __init__)
            with self._lock:
                self._patched.append((cls, original, ours))
        existing = list(getattr(module, "_loggers", {}).values())
        for cb_logger in existing:
            self.attach_wrapper(cb_logger)
        if self._on_hooked is not None:
            self._on_hooked(len(existing))

    def _wrap_init(self, original: Any) -> Any:
        bridge = self

        @functools.wraps(original)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            with contained("bridging a new CrossBridgeLogger"):
                bridge.attach_wrapper(self)

        setattr(__init__, _MARK, original)
        return __init__

    def attach_wrapper(self, cb_logger: Any) -> None:
        """Bridge one ``CrossBridgeLogger`` (its stdlib logger gets one handler with its category)."""
        logger = getattr(cb_logger, "_logger", None)
        if not isinstance(logger, logging.Logger):
            return
        category = getattr(cb_logger, "category", None)
        category = str(getattr(category, "value", category) or "general")
        handler = BridgeHandler(
            self._provider, category=category, wrapper_file=self._wrapper_file, owner=logger.name
        )
        self._attach(logger, handler)

    def _attach(self, logger: logging.Logger, handler: BridgeHandler) -> None:
        with self._lock:
            if any(isinstance(existing, BridgeHandler) for existing in logger.handlers):
                return  # already bridged: the first category stays
            logger.addHandler(handler)
            self._attached.append((logger, handler))
