"""The CrossBridge areas behind the distribution's one ``opentelemetry_instrumentor`` entry point, ``crossbridge``.

One entry point, not one per area: ``opentelemetry-instrument`` checks each entry point's distribution for
dependency conflicts at start-up (two ``METADATA`` parses each), which for eleven entry points was about 5 ms of
every process's start. Each area keeps its name for ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``
(``crossbridge_coverage,crossbridge_profiling``); ``crossbridge`` there turns every area off.

Under our distro (:mod:`crossbridge_otel.distro`) each area is loaded on its own, when CrossBridge is first
imported. Under another distro, :class:`AreasInstrumentor` instruments every area that is not disabled, each
failure contained to its area.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

__all__ = ["AREAS", "ENTRY_POINT", "AreasInstrumentor", "area_entry_points", "disabled_names"]

ENTRY_POINT = "crossbridge"
_PACKAGE = "crossbridge_otel.instrumentors"
# name in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS -> "module:class", in the order they load
AREAS: dict[str, str] = {
    "crossbridge_logging": f"{_PACKAGE}.logging:LoggingInstrumentor",
    "crossbridge_profiling": f"{_PACKAGE}.profiling:ProfilingInstrumentor",
    "crossbridge_coverage": f"{_PACKAGE}.coverage:CoverageInstrumentor",
    "crossbridge_execution": f"{_PACKAGE}.execution:ExecutionInstrumentor",
    "crossbridge_translation": f"{_PACKAGE}.translation:TranslationInstrumentor",
    "crossbridge_orchestration": f"{_PACKAGE}.orchestration:OrchestrationInstrumentor",
    "crossbridge_repo": f"{_PACKAGE}.repo:RepoInstrumentor",
    "crossbridge_services": f"{_PACKAGE}.services:ServicesInstrumentor",
    "crossbridge_runtime": f"{_PACKAGE}.runtime:RuntimeInstrumentor",
    "crossbridge_cli": f"{_PACKAGE}.cli:CliInstrumentor",
    "crossbridge_ai": f"{_PACKAGE}.ai:AIInstrumentor",
}


def disabled_names(env: Mapping[str, str]) -> set[str]:
    """The names in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``, read as ``opentelemetry-instrument`` reads them."""
    return {name.strip() for name in env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",") if name.strip()}


def is_ours(entry_point: Any) -> bool:
    """Whether an ``opentelemetry_instrumentor`` entry point is this distribution's ``crossbridge`` one."""
    return getattr(entry_point, "name", None) == ENTRY_POINT and str(getattr(entry_point, "value", "")).startswith(
        f"{_PACKAGE}."
    )


def area_entry_points(disabled: set[str] = frozenset()) -> list[EntryPoint]:  # type: ignore[assignment]
    """One entry point per area (same group as the real one), leaving out the disabled ones."""
    if ENTRY_POINT in disabled or "*" in disabled:
        return []
    return [
        EntryPoint(name=name, value=value, group="opentelemetry_instrumentor")
        for name, value in AREAS.items()
        if name not in disabled
    ]


class AreasInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Every area not disabled, for distros other than ours (which loads each area when CrossBridge is imported)."""

    _instances: tuple[Any, ...] = ()  # BaseInstrumentor is a singleton whose __init__ runs at every call

    def instrumentation_dependencies(self) -> tuple[str, ...]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        import os

        from crossbridge_otel._guard import report_failure

        instances = []
        for entry_point in area_entry_points(disabled_names(os.environ)):
            try:
                instance = entry_point.load()()
                instance.instrument(**kwargs)
            except Exception as exc:  # one area failing never stops the others
                report_failure(f"instrumentor {entry_point.name}", exc)
                continue
            instances.append(instance)
        self._instances = tuple(instances)

    def _uninstrument(self, **kwargs: Any) -> None:
        instances, self._instances = self._instances, ()
        for instance in reversed(instances):
            instance.uninstrument(**kwargs)
