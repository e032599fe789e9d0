"""The one ``crossbridge`` instrumentor entry point: every area behind it, each still turned off by its own name."""

from __future__ import annotations

import logging
import sys
from importlib.metadata import EntryPoint, entry_points

import pytest
from opentelemetry.instrumentation.distro import DefaultDistro
from support.engine import run_instrumented

from crossbridge_otel.distro import CrossBridgeDistro, waits_for
from crossbridge_otel.instrumentors import areas

# Which area instrumentors a real `opentelemetry-instrument` run has instrumented once a CrossBridge package (the
# CrossBridge-shaped fixture package `services`) is imported: every area is loaded when CrossBridge is first imported.
_PROBE = """
import importlib, json
from crossbridge_otel.instrumentors.areas import AREAS
before = [n for n, v in AREAS.items() if v.split(':')[0] in __import__('sys').modules]
import services
loaded = []
for name, value in AREAS.items():
    module, cls = value.split(':')
    if getattr(importlib.import_module(module), cls)().is_instrumented_by_opentelemetry:
        loaded.append(name)
print(json.dumps({"before": before, "loaded": loaded}))
"""


def _run(disabled: str) -> dict[str, list[str]]:
    import json

    done = run_instrumented(_PROBE, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=disabled, OTEL_TRACES_EXPORTER="none",
                            OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "crossbridge-otel settings" not in done.stderr, done.stderr  # each name is a known one
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("disabled", "expected_off"),
    [
        ("", set()),
        ("crossbridge_coverage", {"crossbridge_coverage"}),
        (" crossbridge_profiling , crossbridge_ai,psycopg2", {"crossbridge_profiling", "crossbridge_ai"}),
        ("crossbridge", set(areas.AREAS)),
    ],
)
def test_each_area_is_turned_off_by_its_own_name(disabled, expected_off):
    """Under opentelemetry-instrument an area named in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS stays unpatched, every
    other one is loaded at the first CrossBridge import (none before it); `crossbridge` turns them all off."""
    seen = _run(disabled)
    assert seen["before"] == []
    # crossbridge_cli waits for the CLI's own modules (Typer, cli.commands), not the package imported here
    waiting_for_services = [name for name in areas.AREAS if "services" in waits_for(name)]
    assert seen["loaded"] == [name for name in waiting_for_services if name not in expected_off]


def test_the_distribution_registers_one_instrumentor_entry_point():
    """One entry point for all areas, so opentelemetry-instrument checks our distribution once at start-up."""
    ours = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.value.startswith("crossbridge_otel.")]
    assert [(ep.name, ep.value) for ep in ours] == [(areas.ENTRY_POINT, f"{areas.__name__}:AreasInstrumentor")]
    assert all(ep.load().__module__ == ep.module for ep in areas.area_entry_points())  # every area resolves


_GOOD = "victims.entrypoints:GoodInstrumentor"
_BROKEN_IMPORT = "victims.no_such_module:Instrumentor"


@pytest.fixture
def two_areas(monkeypatch):
    """The registry holds an area whose module does not import, then a working one (failures contained, as in
    production: the suite runs strict)."""
    from victims import entrypoints

    monkeypatch.setenv("CROSSBRIDGE_OTEL_STRICT", "false")
    monkeypatch.setattr(areas, "AREAS", {"crossbridge_broken": _BROKEN_IMPORT, "crossbridge_good": _GOOD})
    monkeypatch.delenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", raising=False)
    for name in ("core", "adapters", "services", "cli", "persistence"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield entrypoints.loaded
    if entrypoints.loaded:
        entrypoints.GoodInstrumentor().uninstrument()


def _ours() -> EntryPoint:
    return EntryPoint(name=areas.ENTRY_POINT, value=f"{areas.__name__}:AreasInstrumentor",
                      group="opentelemetry_instrumentor")


def test_an_area_that_fails_to_import_is_said_and_the_others_load(two_areas, caplog):
    """Under our distro an area whose module fails to import at the first CrossBridge import is reported (it is our
    failure, not a missing library to skip quietly) and the next area still loads."""
    CrossBridgeDistro().load_instrumentor(_ours(), skip_dep_check=True)
    assert two_areas == []  # nothing before CrossBridge is imported
    with caplog.at_level(logging.WARNING, logger="crossbridge_otel"):
        import services  # noqa: F401 (the CrossBridge-shaped fixture package: importing it is the test)
    assert two_areas == ["good"]
    assert any("instrumentor crossbridge_broken" in r.getMessage() for r in caplog.records), caplog.text


def test_another_distro_gets_every_area_not_disabled(two_areas, monkeypatch, caplog):
    """Under a distro other than ours the entry point's instrumentor instruments each area at once, skips the
    disabled ones, contains a failing one, and uninstruments what it instrumented."""
    entry_point = _ours()
    with caplog.at_level(logging.WARNING, logger="crossbridge_otel"):
        DefaultDistro().load_instrumentor(entry_point)
    assert two_areas == ["good"]
    assert any("instrumentor crossbridge_broken" in r.getMessage() for r in caplog.records), caplog.text
    entry_point.load()().uninstrument()
    assert two_areas == []

    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "crossbridge_good")
    entry_point.load()().instrument()
    assert two_areas == []
    entry_point.load()().uninstrument()
