"""Named retry policies: CrossBridge's names and numbers, overridable by one setting.

=============  ========  ======  =====  ========
policy         attempts  base s  cap s  exp base
=============  ========  ======  =====  ========
quick          2         0.1     1.0    2
default        3         0.5     5.0    2
expensive      5         1.0     10.0   2
conservative   3         2.0     30.0   3
=============  ========  ======  =====  ========

These are CrossBridge's ``core.runtime.config`` defaults (TARGETS §9). The distribution adds one of its own
(:data:`OWN_POLICIES`), for writes that should ride out a database restart:

=============  ========  ======  =====  ========  ======  ========
policy         attempts  base s  cap s  exp base  jitter  budget s
=============  ========  ======  =====  ========  ======  ========
restart        20        0.5     5.0    2         equal   30
=============  ========  ======  =====  ========  ======  ========

Its waits grow 0.25-0.5, 0.5-1, 1-2, 2-4, then 2.5-5 s, until 30 s have passed (the call's budget is the
smaller of this and ``CROSSBRIDGE_OTEL_RETRY_BUDGET``): a restart takes seconds, which three quick attempts
(``default``: at most 1.5 s of waiting) never outlast. ``CROSSBRIDGE_OTEL_RETRY_POLICIES`` overrides or adds
policies: ``name=attempts:base:cap[:exp_base]``, comma-separated; overriding a policy keeps its jitter and
budget. An unknown policy name falls back to ``default``, as in CrossBridge.

The delay before attempt ``n + 1`` is *full jitter, capped*: ``uniform(0, min(cap, base * exp_base ** (n - 1)))``.
Unlike CrossBridge's ``calculate_delay`` (which multiplies by ``U(0.5, 1.5)`` after capping, so it can exceed
the cap by half), it never exceeds the cap. *Equal jitter* (``restart``) draws from the upper half,
``uniform(c / 2, c)``: a floor, so attempts cannot all land in the first instant of a restart. A server's
``Retry-After`` replaces the computed delay, also capped.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace

__all__ = ["DEFAULT_POLICIES", "OWN_POLICIES", "Policy", "capped_delay", "parse_policies", "policy_named"]

_log = logging.getLogger("crossbridge_otel")


@dataclass(frozen=True)
class Policy:
    """How often and how long to retry: ``attempts`` in total (the first one included), ``jitter`` ``full`` or
    ``equal``, and ``budget`` (seconds for all attempts of a call, or None: the retry budget setting alone)."""

    name: str
    attempts: int
    base: float
    cap: float
    exp_base: float = 2.0
    jitter: str = "full"
    budget: float | None = None

    def ceiling(self, failed: int) -> float:
        """The largest delay after ``failed`` failed attempts (1-based), before jitter."""
        return min(self.cap, self.base * self.exp_base ** (failed - 1))


DEFAULT_POLICIES: Mapping[str, Policy] = {
    "quick": Policy("quick", 2, 0.1, 1.0),
    "default": Policy("default", 3, 0.5, 5.0),
    "expensive": Policy("expensive", 5, 1.0, 10.0),
    "conservative": Policy("conservative", 3, 2.0, 30.0, 3.0),
}

OWN_POLICIES: Mapping[str, Policy] = {
    "restart": Policy("restart", 20, 0.5, 5.0, 2.0, jitter="equal", budget=30.0),
}


def capped_delay(policy: Policy, failed: int, retry_after: float | None = None, uniform: float | None = None) -> float:
    """Seconds to sleep after ``failed`` failed attempts: the policy's jitter under the cap, or ``Retry-After``
    capped."""
    if retry_after is not None:
        return max(0.0, min(retry_after, policy.cap))
    u = random.random() if uniform is None else uniform
    ceiling = policy.ceiling(failed)
    if policy.jitter == "equal":
        return ceiling * (1.0 + u) / 2.0
    return u * ceiling


def _parse_one(name: str, spec: str, template: Policy | None) -> Policy:
    parts = spec.split(":")
    if len(parts) not in (3, 4):
        raise ValueError("expected attempts:base:cap[:exp_base]")
    attempts = int(parts[0])
    base, cap = float(parts[1]), float(parts[2])
    exp_base = float(parts[3]) if len(parts) == 4 else 2.0
    if attempts < 1 or base < 0 or cap < base or exp_base < 1:
        raise ValueError("need attempts >= 1, 0 <= base <= cap, exp_base >= 1")
    if template is not None:  # keep what the spec cannot say: the jitter and the budget
        return replace(template, attempts=attempts, base=base, cap=cap, exp_base=exp_base)
    return Policy(name, attempts, base, cap, exp_base)


def parse_policies(text: str) -> dict[str, Policy]:
    """CrossBridge's table with ``name=attempts:base:cap[:exp_base],...`` applied (an override of one of
    :data:`OWN_POLICIES` is added to it); a bad entry is warned and skipped."""
    policies = dict(DEFAULT_POLICIES)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, spec = item.partition("=")
        name = name.strip()
        try:
            policies[name] = _parse_one(name, spec.strip(), policies.get(name) or OWN_POLICIES.get(name))
        except ValueError as exc:
            _log.warning("crossbridge-otel: retry policy %r ignored (%s)", item, exc)
    return policies


def policy_named(name: str, text: str = "") -> Policy:
    """The policy ``name`` under the overrides ``text``; unknown names fall back to ``default``."""
    policies = parse_policies(text)
    return policies.get(name) or OWN_POLICIES.get(name) or policies["default"]
