"""The swallowed-failure evidence, rule by rule: kills the mutants of crossbridge_otel/retry/swallowed.py.

``observe`` must see the exception CrossBridge handled (not one that was already being handled before), see a
``commit`` whether it is a C function (sqlite3) or a Python method, see nothing for other calls, stand aside
when the thread already has a profiler, and always remove its hook.
"""

from __future__ import annotations

import sqlite3
import sys
from typing import Any

import pytest

from crossbridge_otel.retry.swallowed import Evidence, observe


def _swallows(exc: BaseException) -> bool:
    """CrossBridge's shape: catch, call something while handling (its logger), return False."""
    try:
        raise exc
    except Exception as caught:
        # repr(), not the logger: these tests isolate the hook's rules (the logger's shape, with logging's own
        # KeyError on a level-cache miss, is tests/engine/retry/test_swallowed.py).
        repr(caught)
        return False


class _PyConnection:
    def commit(self) -> None:
        """A Python ``commit`` (a proxy of a driver's)."""

    def rollback(self) -> None:
        """Any other method."""


def test_fresh_evidence_is_empty() -> None:
    """A new Evidence holds no exception, no commit and no observation."""
    evidence = Evidence()
    assert (evidence.exc, evidence.reached_commit, evidence.observed) == (None, False, False)


def test_result_and_arguments_pass_through() -> None:
    """``observe`` calls ``fn`` with its arguments and returns its result."""
    evidence = Evidence()
    assert observe(lambda a, b=0: (a, b), (1,), {"b": 2}, evidence) == (1, 2)
    assert evidence.observed is True


def test_swallowed_exception_is_seen() -> None:
    """The exception a function caught and logged is the evidence's ``exc``."""
    boom = ConnectionError("refused")
    evidence = Evidence()
    assert observe(_swallows, (boom,), {}, evidence) is False
    assert evidence.exc is boom and evidence.reached_commit is False


def test_exception_already_handled_before_is_not_blamed() -> None:
    """An exception being handled when ``observe`` starts is not taken for the attempt's own."""
    evidence = Evidence()
    try:
        raise KeyError("outer")
    except KeyError:
        observe(repr, ("inside a handler",), {}, evidence)
    assert evidence.exc is None


def test_c_commit_is_seen() -> None:
    """A C-level ``connection.commit`` (sqlite3) counts as reaching commit."""
    connection = sqlite3.connect(":memory:")
    evidence = Evidence()
    observe(connection.commit, (), {}, evidence)
    assert evidence.reached_commit is True


def test_python_commit_is_seen() -> None:
    """A Python method named ``commit`` counts as reaching commit."""
    evidence = Evidence()
    observe(_PyConnection().commit, (), {}, evidence)
    assert evidence.reached_commit is True


def test_other_calls_are_not_commit() -> None:
    """Neither C calls nor Python calls of other names count as commit."""
    connection = sqlite3.connect(":memory:")
    evidence = Evidence()
    observe(lambda: (connection.rollback(), _PyConnection().rollback(), len("x")), (), {}, evidence)
    assert evidence.reached_commit is False


def test_hook_is_removed_after_return_and_after_raise() -> None:
    """No profile hook is left on the thread, whether ``fn`` returns or raises (unchanged)."""
    observe(len, ("abc",), {}, Evidence())
    assert sys.getprofile() is None
    boom = RuntimeError("boom")

    def raises() -> None:
        raise boom

    evidence = Evidence()
    with pytest.raises(RuntimeError) as caught:
        observe(raises, (), {}, evidence)
    assert caught.value is boom and sys.getprofile() is None and evidence.observed is True


def test_existing_profiler_is_left_alone() -> None:
    """With a profiler already on the thread, ``fn`` runs unobserved (with all its arguments) and the profiler stays."""

    def profiler(frame: Any, event: str, arg: Any) -> None:
        return None

    evidence = Evidence()
    sys.setprofile(profiler)
    try:
        assert observe(_swallows, (ValueError("x"),), {}, evidence) is False
        assert observe(lambda a, b=0: (a, b), (1,), {"b": 2}, evidence) == (1, 2)
        assert sys.getprofile() is profiler
    finally:
        sys.setprofile(None)
    assert (evidence.observed, evidence.exc, evidence.reached_commit) == (False, None, False)
