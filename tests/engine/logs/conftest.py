"""Log bridge test set-up: the instrumentor on the test providers, logging state restored afterwards.

Every test gets the logging configuration it started with back (root handlers, level and filters; the
package loggers' handlers), CrossBridge's console output silenced, and the instrumentor uninstrumented.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator

import pytest

from crossbridge_otel.instrumentors.logging import LoggingInstrumentor

_names = itertools.count()
WATCHED = ("", "core", "adapters", "services")


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Root and package loggers get their handlers, filters, level and propagate flag back."""
    import core.logging.logger as cb_module

    monkeypatch.setattr(cb_module, "_console_enabled", False)
    saved = {}
    for name in WATCHED:
        logger = logging.getLogger(name)
        saved[name] = (list(logger.handlers), list(logger.filters), logger.level, logger.propagate)
    root_filters = {id(h): list(h.filters) for h in logging.getLogger().handlers}
    yield
    for name, (handlers, filters, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers[:]:
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
        logger.handlers[:] = handlers
        logger.filters[:] = filters
        logger.setLevel(level)
        logger.propagate = propagate
    for handler in logging.getLogger().handlers:
        handler.filters[:] = root_filters.get(id(handler), handler.filters)


@pytest.fixture
def unique():
    """A fresh CrossBridge logger name per call (CrossBridge caches loggers by name for the process)."""
    return lambda stem="mod": f"test.logbridge.{stem}{next(_names)}"


@pytest.fixture
def bridged(telemetry) -> Iterator[LoggingInstrumentor]:
    """The logging instrumentor installed on the in-memory providers; uninstrumented afterwards."""
    inst = LoggingInstrumentor()
    inst.instrument(**telemetry.providers)
    yield inst
    inst.uninstrument()


@pytest.fixture
def cb():
    """CrossBridge's core.logging module (the fixture)."""
    import core.logging as module

    return module
