"""Waiting on a condition, not on the clock: poll until it holds; the deadline only bounds a failure."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, timeout: float = 30.0, interval: float = 0.01) -> T:
    """Poll ``condition`` until it returns something truthy and return that; fail naming ``what`` after ``timeout``.

    A passing test never reaches the deadline, so it is generous: it only keeps a broken test from hanging.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # not time.sleep: some tests record or replace it
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting until {what}")
        pause.wait(interval)
