"""The distro ``opentelemetry-instrument`` loads first: environment defaults only.

Defaults (each only when the user has not set it): OTLP exporters for traces, logs and metrics over
``http/protobuf``, and service name ``crossbridge``. It also contains a failing instrumentor so that one
area failing to load never stops the others (``opentelemetry-instrument`` itself stops at the first one).

Start-up checks: the standard ``OTEL_*`` variables we rely on are checked (:mod:`crossbridge_otel.otel_env`: unknown
exporter, protocol, sampler or instrumentation names, misspelt variable names), one warning each with "did you
mean"; our own ``CROSSBRIDGE_OTEL_*`` are checked by the configurator. With ``CROSSBRIDGE_OTEL_ENABLED=false``
no instrumentor is loaded at all (ours or the contrib ones). With ``CROSSBRIDGE_OTEL_LOCAL_OUTPUT`` set, a new
``CROSSBRIDGE_OTEL_RUN_ID`` is put in the environment unless one is there, so the processes CrossBridge starts
write their lines as part of the same run.

Start-up: an instrumentor is loaded when what it instruments is first imported, not before. Our one entry
point, ``crossbridge``, stands for every area (:mod:`crossbridge_otel.instrumentors.areas`), each loaded on its
own and skipped when its name is in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``. Our area instrumentors wait
for the first CrossBridge package (``core``, ``adapters``, ``services``, ``cli``, ``persistence``), the contrib
ones for their library (``psycopg2``, ``requests``, ...). Either way the instrumentor runs before the importing
code gets the module back, so nothing is missed, and a process that never imports them pays nothing for them.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from opentelemetry.instrumentation.dependencies import DependencyConflictError
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

from crossbridge_otel import libraries, otel_env
from crossbridge_otel import settings as settings_mod
from crossbridge_otel._guard import contained, report_failure
from crossbridge_otel.instrumentors import areas
from crossbridge_otel.patching import importhooks as hooks

__all__ = ["DEFAULTS", "CrossBridgeDistro"]

DEFAULTS = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_LOGS_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
}


_CROSSBRIDGE_PACKAGES = ("core", "adapters", "services", "cli", "persistence")
# Entry point -> the modules whose first import loads it (names not listed load at once).
_WAITS_FOR = {
    "psycopg2": ("psycopg2",),
    "requests": ("requests",),
    "httpx": ("httpx",),
    "httpx2": ("httpx2",),
    "sqlite3": ("sqlite3",),
    "sqlalchemy": ("sqlalchemy",),
    "fastapi": ("fastapi",),
    "click": ("click",),
    # the contrib GenAI instrumentations import their SDK when loaded (openai: ~3 s here): wait until the app does
    "openai_v2": ("openai",),
    "openai": ("openai",),
    "anthropic": ("anthropic",),
    # Typer's crossbridge (cli.app) and the argparse group modules `python -m cli.main` imports (cli itself is a
    # namespace package: no loader runs for it, so no post-import hook can fire on it)
    "crossbridge_cli": ("typer", "cli.commands.coverage", "cli.commands.drift_commands"),
}


def waits_for(entry_point_name: str) -> tuple[str, ...]:
    """The modules whose first import loads this instrumentor; empty when it loads at start-up."""
    default = _CROSSBRIDGE_PACKAGES if entry_point_name.startswith("crossbridge_") else ()
    return _WAITS_FOR.get(entry_point_name, default)


def _names_service(resource_attributes: str) -> bool:
    """Whether an ``OTEL_RESOURCE_ATTRIBUTES`` value sets ``service.name`` (spaces allowed around keys)."""
    return any(pair.partition("=")[0].strip() == "service.name" for pair in resource_attributes.split(","))


_log = logging.getLogger("crossbridge_otel")


def new_run_id() -> str:
    """A readable, sortable run id: UTC start time and the pid of the process that began the run."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"


class CrossBridgeDistro(BaseDistro):  # type: ignore[misc]
    """Sets environment defaults; see the module docstring."""

    _enabled = True

    def _configure(self, **kwargs: Any) -> None:
        for name, value in {**DEFAULTS, **libraries.ENV_DEFAULTS}.items():
            os.environ.setdefault(name, value)
        if not _names_service(os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")):
            os.environ.setdefault("OTEL_SERVICE_NAME", "crossbridge")
        with contained("start-up settings check"):
            ours = settings_mod.load(warn=False)  # the configurator warns about our own variables
            self._enabled = bool(ours.enabled)
            if self._enabled and ours.local_output and not ours.run_id:
                os.environ["CROSSBRIDGE_OTEL_RUN_ID"] = new_run_id()
            for problem in otel_env.check(os.environ):
                _log.warning("crossbridge-otel settings: %s", problem)

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        if not self._enabled:
            return  # CROSSBRIDGE_OTEL_ENABLED=false: no patches at all, contrib ones included
        if areas.is_ours(entry_point):
            self._load_areas(kwargs)
            return
        modules = waits_for(entry_point.name)
        if modules and not any(name in sys.modules for name in modules):
            self._load_on_import(entry_point, modules, kwargs)
            return
        self._load_now(entry_point, **kwargs)

    def _load_areas(self, kwargs: dict[str, Any]) -> None:
        """Our one entry point stands for every area: each is loaded (or waits) on its own, its failure its own."""
        for area in areas.area_entry_points(areas.disabled_names(os.environ)):
            try:
                self.load_instrumentor(area, **kwargs)
            except Exception as exc:  # an area's module failing to import is our failure, not a missing library
                report_failure(f"instrumentor {area.name}", exc)

    def _load_on_import(self, entry_point: Any, modules: tuple[str, ...], kwargs: dict[str, Any]) -> None:
        pending: list[hooks.Hook] = []

        def load(module: Any) -> None:
            for hook in pending:
                hooks.cancel(hook)
            if not pending_flag:
                return
            pending_flag.clear()
            try:
                self._load_now(entry_point, **kwargs)
            except (ImportError, DependencyConflictError) as exc:
                # a library's instrumentation not being usable here is skipped, as at start-up; one of our
                # areas failing to import is a failure of ours, and said
                if entry_point.name in areas.AREAS:
                    report_failure(f"instrumentor {entry_point.name}", exc)

        pending_flag = [True]
        for name in modules:
            hook = hooks.when_imported(name, load)
            if hook is not None:
                pending.append(hook)

    def _load_now(self, entry_point: Any, **kwargs: Any) -> None:
        try:
            # contrib libraries get our configuration (URL redaction hooks, ...): crossbridge_otel.libraries
            kwargs = {**libraries.instrument_kwargs(entry_point.name), **kwargs}
            super().load_instrumentor(entry_point, **kwargs)
            libraries.after_instrument(entry_point.name)
        except (ImportError, DependencyConflictError):
            # opentelemetry-instrument already handles these per entry point (a library that is not
            # installed is skipped quietly); containing them here turned each into a warning + traceback.
            raise
        except Exception as exc:
            report_failure(f"instrumentor {entry_point.name}", exc)
