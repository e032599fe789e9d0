"""Scripted CrossBridge-like services: each call takes the next step of ``script`` (an exception to raise,
or a value to return); ``Store`` swallows failures into ``False`` like CrossBridge's storage backends."""

from __future__ import annotations

import logging

log = logging.getLogger("crossbridge.retry_victims")


class Scripted:
    def __init__(self, *script):
        self.script = list(script)
        self.calls = 0

    def _step(self):
        self.calls += 1
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, BaseException):
            raise step
        return step


class Reader(Scripted):
    """An idempotent read that raises."""

    def read(self, key="k"):
        return self._step()


class Writer(Scripted):
    """A non-idempotent write that raises."""

    def write(self, rows):
        return self._step()


class Connection:
    """A DB-API-like connection whose ``commit`` may fail; committed batches are kept."""

    def __init__(self, commit_failures=()):
        self.commit_failures = list(commit_failures)
        self.committed = []
        self.pending = []

    def commit(self):
        if self.commit_failures:
            self.pending = []
            raise self.commit_failures.pop(0)
        self.committed.extend(self.pending)
        self.pending = []


class Store(Scripted):
    """Swallows every failure into False (logged), like PostgresStorageBackend."""

    def __init__(self, *script, connection=None, initialized=True):
        super().__init__(*script)
        self.connection = connection or Connection()
        self.initialized = initialized

    def initialize(self):
        try:
            self._step()
            return True
        except Exception as exc:
            log.error("Failed to initialize: %s", exc)
            return False

    def write_events(self, events):
        if not self.initialized:
            return False
        try:
            self._step()  # the INSERTs
            self.connection.pending = list(events)
            self.connection.commit()
            return True
        except Exception as exc:
            log.error("Failed to write events: %s", exc)
            return False
