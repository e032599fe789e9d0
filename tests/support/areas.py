"""Fixtures for tests that instrument whole areas: clean registry state, and ``instrument(cls)`` with the test's
in-memory providers (uninstrumented at teardown). Imported by ``tests/instrumentors/conftest.py`` and
``tests/engine/doctor/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from crossbridge_otel import _guard
from crossbridge_otel.patching import status

__all__ = ["_clean_state", "instrument"]


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    """Empty status registry and contained-failure counts around every test."""
    status.clear()
    _guard.reset()
    yield
    status.clear()
    _guard.reset()


@pytest.fixture
def instrument(telemetry: Any) -> Iterator[Callable[..., Any]]:
    """Instrument ``cls()`` with the in-memory providers; every one is uninstrumented at teardown."""
    done: list[Any] = []

    def _instrument(cls: type, **kwargs: Any) -> Any:
        inst = cls()
        inst.instrument(**{**telemetry.providers, **kwargs})
        done.append(inst)
        return inst

    yield _instrument
    for inst in reversed(done):
        inst.uninstrument()
