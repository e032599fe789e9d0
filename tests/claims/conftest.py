"""Claims tests: each README promise under the fault that breaks it.

``CLAIMS_BREAK=<name>[,<name>]`` applies a named breakage of the distribution for the whole run (a monkeypatch of
a module attribute, never an edit of the file), to show that the tests below go red without the code they guard:

- ``attempts_redact``: ``retry`` events' ``exception.message`` no longer redacted (retry/attempts.py);
- ``invoker_redact``: the retry layer's final ``exception`` event no longer redacted (retry/invoker.py);
- ``commit_check``: the "did this attempt reach commit?" evidence always says no (retry/swallowed.py);
- ``sql_redact``: the DB-API spans' captured parameters and statements no longer redacted (libraries.py);
- ``sql_password_rule``: redaction's SQL ``PASSWORD '...'`` rule matches nothing (redaction.py);
- ``uncounted_drops``, ``uncounted_interrupted``, ``uncounted_failed``, ``fork_relabel``, ``fork_keeps_queue``:
  applied inside the instrumented child of test_inflight_claims.py (tests/claims/inflight_workload.py): nothing
  dropped counted, the in-flight batch an exit deadline cut short not counted, a failed export's batch not counted,
  a forked child keeping the parent's resource, a forked child re-sending what the parent had queued.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest


def _identity(text: str) -> str:
    return text


def _break_commit_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from crossbridge_otel.retry import invoker, swallowed

    real = swallowed.observe

    def observe(fn, args, kwargs, evidence):  # type: ignore[no-untyped-def]
        try:
            return real(fn, args, kwargs, evidence)
        finally:
            evidence.reached_commit = False

    monkeypatch.setattr(invoker, "observe", observe)


_IN_CHILD = {"uncounted_drops", "uncounted_interrupted", "uncounted_failed", "fork_relabel", "fork_keeps_queue"}


def _apply(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if name == "attempts_redact":
        from crossbridge_otel.retry import attempts

        monkeypatch.setattr(attempts, "redact", _identity)
    elif name == "invoker_redact":
        from crossbridge_otel.retry import invoker

        monkeypatch.setattr(invoker, "redact", _identity)
    elif name == "commit_check":
        _break_commit_check(monkeypatch)
    elif name == "sql_redact":
        from crossbridge_otel import libraries

        monkeypatch.setattr(libraries, "redact", _identity)
    elif name == "sql_password_rule":
        from crossbridge_otel import redaction

        monkeypatch.setattr(redaction, "_SQL_PASSWORD", re.compile(r"(?!)"))
    elif name in _IN_CHILD:
        pass  # the environment variable reaches the child, which breaks itself
    else:
        raise pytest.UsageError(f"CLAIMS_BREAK: unknown breakage {name!r}")


@pytest.fixture(autouse=True)
def claims_breakage(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Applies the breakages named by CLAIMS_BREAK (none by default)."""
    for name in filter(None, os.environ.get("CLAIMS_BREAK", "").split(",")):
        _apply(name.strip(), monkeypatch)
    yield
