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
