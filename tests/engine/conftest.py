"""Engine test set-up: fresh victim modules, a factory of throw-away instrumentors, clean global state.

Every test gets the victims un-imported (``sys.modules`` is cleaned before and after), an empty status
registry, the runtime switch on, and every instrumentor it built uninstrumented at teardown.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest

from crossbridge_otel import _guard, set_enabled
from crossbridge_otel.patching import status
from crossbridge_otel.patching.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.patching.targets import Target


def _forget_victims() -> None:
    for name in [n for n in sys.modules if n == "victims" or n.startswith(("victims.", "engine_tmp_"))]:
        del sys.modules[name]


@pytest.fixture(autouse=True)
def clean_engine_state() -> Iterator[None]:
    """Victims un-imported, empty status registry and failure counts, switch on; restored afterwards."""
    _forget_victims()
    status.clear()
    _guard.reset()
    set_enabled(True)
    yield
    set_enabled(True)
    _forget_victims()
    status.clear()
    _guard.reset()


@pytest.fixture
def lenient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Failures inside the distribution are contained, as in production (the suite runs strict)."""
    monkeypatch.setenv("CROSSBRIDGE_OTEL_STRICT", "false")


Instrument = Callable[..., CrossBridgeInstrumentor]


@pytest.fixture
def instrument(telemetry) -> Iterator[Instrument]:
    """Build a fresh instrumentor class for the given targets and instrument it with the test providers."""
    made: list[CrossBridgeInstrumentor] = []

    def apply(*targets: Target, area: str = "victim", category: str = "testing") -> CrossBridgeInstrumentor:
        cls = type(
            f"Victim{len(made)}Instrumentor", (CrossBridgeInstrumentor,),
            {"area": area, "category": category, "targets": tuple(targets)},
        )
        inst = cls()
        inst.instrument(**telemetry.providers)
        made.append(inst)
        return inst

    yield apply
    for inst in made:
        inst.uninstrument()

