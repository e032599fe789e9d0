"""The swallowed-failure evidence with CrossBridge's real shape: an ``except`` block that logs, then returns False.

(The rule-by-rule mutant killers are in tests/claims/test_swallowed_mutants.py.)
"""

from __future__ import annotations

import logging

from crossbridge_otel.retry.swallowed import Evidence, observe


def _store(log: logging.Logger, exc: BaseException) -> bool:
    """CrossBridge's storage shape: catch everything, log it at ERROR, return False."""
    try:
        raise exc
    except Exception as e:
        log.error(f"Failed to initialize PostgreSQL storage: {e}")
        return False


def test_logging_level_cache_miss_is_not_taken_for_the_failure() -> None:
    """After a level change, logging's own KeyError inside the except block does not replace the swallowed failure."""
    log = logging.getLogger("tests.swallowed.cache_miss")
    log.setLevel(logging.CRITICAL)  # clears logging's level cache: the next isEnabledFor handles a KeyError
    refused = ConnectionRefusedError(111, "Connection refused")
    evidence = Evidence()
    assert observe(_store, (log, refused), {}, evidence) is False
    assert evidence.exc is refused


def test_a_new_failure_after_handling_replaces_the_noted_one() -> None:
    """A second failure handled after the first block ended (not raised while handling it) becomes the evidence."""
    log = logging.getLogger("tests.swallowed.two")
    first, second = TimeoutError("first"), ConnectionRefusedError("second")

    def twice() -> bool:
        _store(log, first)
        return _store(log, second)

    evidence = Evidence()
    assert observe(twice, (), {}, evidence) is False
    assert evidence.exc is second


def test_a_failure_two_handlers_deep_keeps_the_noted_one() -> None:
    """A failure raised while handling one raised while handling the noted failure does not replace it either."""
    refused = ConnectionRefusedError("refused")

    def nested() -> bool:
        try:
            raise refused
        except Exception:
            repr(refused)  # noted here
            try:
                raise KeyError("cache")
            except KeyError:
                try:
                    raise LookupError("deeper")
                except LookupError:
                    repr(None)  # handled with LookupError -> KeyError -> refused as its context chain
            return False

    evidence = Evidence()
    assert observe(nested, (), {}, evidence) is False
    assert evidence.exc is refused


def test_a_looping_context_chain_without_the_noted_one_replaces_it() -> None:
    """A context chain that loops (and never reaches the noted failure) is walked a bounded way: the new one wins."""
    first = TimeoutError("first")
    looped_a, looped_b = ValueError("a"), ValueError("b")

    def twice() -> bool:
        try:
            raise first
        except Exception:
            repr(first)
        try:
            raise looped_a
        except Exception:
            looped_a.__context__, looped_b.__context__ = looped_b, looped_a  # a cycle, without `first`
            repr(looped_a)
        return False

    evidence = Evidence()
    assert observe(twice, (), {}, evidence) is False
    assert evidence.exc is looped_a
