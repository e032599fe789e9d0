"""Retry test set-up: a factory of throw-away instrumentors, clean settings."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from crossbridge_otel import _guard
from crossbridge_otel.patching.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.settings import load as load_settings

FAST = "quick=2:0.001:0.002,default=3:0.001:0.005,expensive=5:0.001:0.005"


def _forget() -> None:
    for name in [n for n in sys.modules if n == "retry_victims" or n.startswith("retry_victims.")]:
        del sys.modules[name]


@pytest.fixture(autouse=True)
def clean_retry_state() -> Iterator[None]:
    """Victims un-imported and contained-failure counts reset, before and after."""
    _forget()
    _guard.reset()
    yield
    _forget()
    _guard.reset()


@pytest.fixture
def instrument(telemetry) -> Iterator:
    """Build a fresh instrumentor class for the given targets; settings default to fast policies."""
    made: list[CrossBridgeInstrumentor] = []

    def apply(*targets, area: str = "victim", **settings):
        settings.setdefault("retry_policies", FAST)
        cls = type(f"RetryVictim{len(made)}Instrumentor", (CrossBridgeInstrumentor,),
                   {"area": area, "category": "testing", "targets": tuple(targets)})
        inst = cls()
        inst.instrument(settings=load_settings(environ={}, warn=False, **settings), **telemetry.providers)
        made.append(inst)
        return inst

    yield apply
    for inst in made:
        inst.uninstrument()

