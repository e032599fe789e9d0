"""Retry policies, rule by rule: kills the mutants of crossbridge_otel/retry/policies.py the wider tests let live.

The ceiling's exponent, the jitter and the Retry-After bounds, every limit of the override syntax (at the
boundary and one past it), the warning for a bad entry, and the fall-back to ``default``.
"""

from __future__ import annotations

import logging

import pytest

from crossbridge_otel.retry.policies import (
    DEFAULT_POLICIES,
    OWN_POLICIES,
    Policy,
    capped_delay,
    parse_policies,
    policy_named,
)


def test_ceiling_grows_by_the_exponent_base_from_the_base() -> None:
    """After n failures the ceiling is base * exp_base ** (n - 1), under the cap."""
    policy = Policy("p", 5, 0.5, 100.0, 3.0)
    assert [policy.ceiling(n) for n in (1, 2, 3)] == [0.5, 1.5, 4.5]
    assert Policy("p", 5, 1.0, 5.0, 2.0).ceiling(4) == 5.0


def test_default_exponent_base_is_two() -> None:
    """A policy built without an exponent base doubles."""
    assert Policy("p", 3, 1.0, 100.0).exp_base == 2.0


def test_delay_is_the_uniform_share_of_the_ceiling() -> None:
    """The delay is ``uniform * ceiling`` for the given uniform draw."""
    policy = Policy("p", 5, 1.0, 100.0)
    assert capped_delay(policy, 3, uniform=0.25) == 1.0
    assert capped_delay(policy, 1, uniform=0.0) == 0.0


def test_delay_without_a_draw_is_random_under_the_ceiling() -> None:
    """Without a given draw the delay is random, within [0, ceiling), and varies."""
    policy = Policy("p", 5, 1.0, 100.0)
    delays = {capped_delay(policy, 2) for _ in range(50)}
    assert all(0.0 <= d < 2.0 for d in delays) and len(delays) > 1


def test_retry_after_is_used_as_given_under_the_cap() -> None:
    """Retry-After replaces the computed delay, capped, and never below zero."""
    policy = Policy("p", 5, 1.0, 10.0)
    assert capped_delay(policy, 1, retry_after=3.5, uniform=0.0) == 3.5
    assert capped_delay(policy, 1, retry_after=60.0) == 10.0
    assert capped_delay(policy, 1, retry_after=-2.0) == 0.0
    assert capped_delay(policy, 1, retry_after=0.0, uniform=1.0) == 0.0


def test_override_with_three_fields_doubles() -> None:
    """``attempts:base:cap`` sets those three numbers and an exponent base of 2."""
    assert parse_policies("x=4:0.25:8")["x"] == Policy("x", 4, 0.25, 8.0, 2.0)


def test_override_with_four_fields_sets_the_exponent_base() -> None:
    """``attempts:base:cap:exp_base`` sets all four, names and specs stripped of blanks."""
    assert parse_policies(" y = 2:1:3:1.5 , ")["y"] == Policy("y", 2, 1.0, 3.0, 1.5)


@pytest.mark.parametrize("spec", ["1:0:0:1", "1:2:2"], ids=["smallest", "cap-equals-base"])
def test_override_at_the_limits_is_accepted(spec: str) -> None:
    """One attempt, a zero base, a cap equal to the base and an exponent base of 1 are all allowed."""
    assert "z" in parse_policies(f"z={spec}") and parse_policies(f"z={spec}")["z"].attempts == int(spec[0])


@pytest.mark.parametrize(
    "spec", ["0:1:2", "1:-0.1:2", "1:3:2.9", "1:1:2:0.99", "1:2", "1:2:3:4:5", "a:1:2", "1:x:2", "1:1:y", "1:1:2:z"],
)
def test_bad_override_is_warned_and_skipped(spec: str, caplog: pytest.LogCaptureFixture) -> None:
    """An entry past a limit or of the wrong shape is skipped with one warning naming it; the rest applies."""
    with caplog.at_level(logging.WARNING, logger="crossbridge_otel"):
        policies = parse_policies(f"bad={spec},good=2:1:2")
    assert "bad" not in policies and policies["good"] == Policy("good", 2, 1.0, 2.0)
    warnings = [r for r in caplog.records if r.name == "crossbridge_otel" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"bad={spec}" in warnings[0].getMessage()


def test_override_replaces_a_default_and_keeps_the_others() -> None:
    """Overriding one named policy leaves the other defaults as CrossBridge has them."""
    policies = parse_policies("quick=9:1:9")
    assert policies["quick"] == Policy("quick", 9, 1.0, 9.0)
    assert {k: v for k, v in policies.items() if k != "quick"} == {
        k: v for k, v in DEFAULT_POLICIES.items() if k != "quick"
    }


def test_empty_overrides_give_the_defaults() -> None:
    """No text (or only commas) gives the default table."""
    assert parse_policies("") == dict(DEFAULT_POLICIES) == parse_policies(",,")


def test_policy_named_finds_an_override_and_falls_back_to_default() -> None:
    """A known name (default or overridden) is found; an unknown one gets ``default`` under the same overrides."""
    assert policy_named("expensive") == DEFAULT_POLICIES["expensive"]
    assert policy_named("mine", "mine=2:1:2") == Policy("mine", 2, 1.0, 2.0)
    assert policy_named("nope") == DEFAULT_POLICIES["default"]
    assert policy_named("nope", "default=7:1:2") == Policy("default", 7, 1.0, 2.0)


@pytest.mark.parametrize(("spec", "why"), [("1:2", "expected attempts:base:cap[:exp_base]"),
                                           ("0:1:2", "need attempts >= 1, 0 <= base <= cap, exp_base >= 1")])
def test_warning_names_the_entry_and_why(spec: str, why: str, caplog: pytest.LogCaptureFixture) -> None:
    """The warning for a bad entry says it is the distribution's, which entry, and the rule it broke."""
    with caplog.at_level(logging.WARNING, logger="crossbridge_otel"):
        parse_policies(f"bad={spec}")
    assert caplog.records[-1].getMessage() == f"crossbridge-otel: retry policy 'bad={spec}' ignored ({why})"


def test_name_ends_at_the_first_equals_sign() -> None:
    """In ``x==1:1:2`` the name is ``x`` and the spec ``=1:1:2`` is bad: no policy named ``x=`` appears."""
    assert set(parse_policies("x==1:1:2")) == set(DEFAULT_POLICIES)


def test_policy_named_without_overrides_warns_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """Looking a policy up without overrides parses nothing and so warns nothing."""
    with caplog.at_level(logging.WARNING, logger="crossbridge_otel"):
        assert policy_named("quick") == DEFAULT_POLICIES["quick"]
    assert not caplog.records


def test_equal_jitter_draws_from_the_upper_half_of_the_ceiling() -> None:
    """Equal jitter: the delay is ``ceiling * (1 + uniform) / 2``, from half the ceiling up to all of it."""
    policy = Policy("e", 5, 1.0, 100.0, jitter="equal")
    assert [capped_delay(policy, 2, uniform=u) for u in (0.0, 0.5, 1.0)] == [1.0, 1.5, 2.0]


def test_the_own_restart_policy_is_found_by_name() -> None:
    """``restart`` (not one of CrossBridge's names) is found without any override, not replaced by default."""
    assert policy_named("restart") == OWN_POLICIES["restart"]


def test_overriding_restart_keeps_its_jitter_and_budget() -> None:
    """An override of ``restart`` sets its four numbers and keeps its equal jitter and 30 s budget."""
    overridden = policy_named("restart", "restart=9:1:4:3")
    assert (overridden.attempts, overridden.base, overridden.cap, overridden.exp_base) == (9, 1.0, 4.0, 3.0)
    assert (overridden.jitter, overridden.budget) == ("equal", 30.0)
