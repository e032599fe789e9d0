"""The guard: contained blocks and functions report once and go no further; the report itself cannot raise."""

from __future__ import annotations

import logging

import pytest

from crossbridge_otel import _guard


class RaisingFilter(logging.Filter):
    def filter(self, record):  # noqa: A003
        raise TypeError("a host filter that raises on every record")


@pytest.fixture
def production(monkeypatch):
    monkeypatch.setenv("CROSSBRIDGE_OTEL_STRICT", "false")
    _guard.reset()
    yield
    _guard.reset()


def test_contained_block_reports_and_swallows(production):
    """An exception inside ``contained`` is counted for its place and does not leave the block."""
    with _guard.contained("unit.block"):
        raise ValueError("inside")
    assert _guard.contained_failures() == {"unit.block": 1}


def test_guarded_function_returns_its_default(production):
    """A ``guarded`` function that raises returns the declared default and counts the failure."""

    @_guard.guarded("unit.function", default=-1)
    def explode() -> int:
        raise RuntimeError("inside")

    assert explode() == -1
    assert _guard.contained_failures() == {"unit.function": 1}


def test_strict_mode_re_raises_the_same_object(monkeypatch):
    """Under the project's own tests (strict), the contained exception is re-raised unchanged."""
    monkeypatch.setenv("CROSSBRIDGE_OTEL_STRICT", "true")
    error = ValueError("strict")
    with pytest.raises(ValueError) as caught, _guard.contained("unit.strict"):
        raise error
    assert caught.value is error
    _guard.reset()


def test_report_survives_a_raising_root_filter(production):
    """A root handler whose filter raises (CrossBridge's secure-logging bug) cannot make the report raise."""
    handler = logging.StreamHandler()
    handler.addFilter(RaisingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        _guard.report_failure("unit.raising-filter", ValueError("boom"))
    finally:
        root.removeHandler(handler)
    assert _guard.contained_failures() == {"unit.raising-filter": 1}
