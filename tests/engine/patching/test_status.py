"""Drift and breakage never reach the application: missing pieces, broken modules, buggy extractors."""

from __future__ import annotations

import logging
import sys

import pytest
from support.engine import state_of

from crossbridge_otel import _guard
from crossbridge_otel.patching.status import State
from crossbridge_otel.patching.targets import Target

PING = Target("victims.partner", "ping", "victim.ping")


@pytest.fixture
def broken_syntax_module(tmp_path, monkeypatch):
    """A module on sys.path whose source is a SyntaxError (like CrossBridge's cypress_hook.py)."""
    (tmp_path / "engine_tmp_broken.py").write_text("def oops(:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "engine_tmp_broken"


def test_missing_module_is_reported_and_other_targets_still_patch(instrument, telemetry):
    """A target module that does not exist is reported as missing when imported; its neighbours still patch."""
    instrument(Target("victims.not_there", "run", "victim.missing"), PING)
    with pytest.raises(ModuleNotFoundError) as caught:
        import victims.not_there  # noqa: F401
    assert caught.value.name == "victims.not_there"
    assert state_of("victims.not_there", "run").state == State.MODULE_MISSING
    from victims import partner

    assert partner.ping() == "pong"
    assert len(telemetry.spans("victim.ping")) == 1


def test_missing_attribute_is_reported_and_other_targets_still_patch(instrument, telemetry):
    """A target attribute absent from its module (version drift) is reported; the rest of the table applies."""
    instrument(
        Target("victims.partner", "gone", "victim.gone"),
        Target("victims.partner", "Nope.method", "victim.nope"),
        PING,
    )
    from victims import partner

    assert state_of("victims.partner", "gone").state == State.ATTRIBUTE_MISSING
    assert state_of("victims.partner", "Nope.method").state == State.ATTRIBUTE_MISSING
    assert partner.ping() == "pong"
    assert state_of("victims.partner", "ping").state == State.PATCHED


def test_syntax_error_module_fails_as_without_us(instrument, telemetry, broken_syntax_module):
    """A target module with a SyntaxError fails its import unchanged, is reported, and others still patch."""
    instrument(Target(broken_syntax_module, "oops", "victim.oops"), PING)
    with pytest.raises(SyntaxError) as caught:
        __import__(broken_syntax_module)
    assert caught.value.filename.endswith("engine_tmp_broken.py")
    assert broken_syntax_module not in sys.modules
    row = state_of(broken_syntax_module, "oops")
    assert row.state == State.FAILED and "SyntaxError" in row.detail
    from victims import partner

    partner.ping()
    assert len(telemetry.spans("victim.ping")) == 1


def test_import_error_module_raises_the_same_exception_object(instrument):
    """A target module raising ImportError at import hands the importer that very exception object."""
    from victims import evidence

    instrument(Target("victims.failing", "anything", "victim.failing"))
    with pytest.raises(ImportError) as caught:
        import victims.failing  # noqa: F401
    assert caught.value is evidence.raised[-1]
    row = state_of("victims.failing", "anything")
    assert row.state == State.FAILED and "needs a dependency" in row.detail


def test_extractor_failure_is_contained_reported_once_and_call_goes_ahead(
    instrument, telemetry, lenient, caplog
):
    """A call_attributes extractor that raises is logged once, counted each time, and the call is unchanged."""

    def bad_extractor(args, kwargs):
        raise KeyError("extractor bug")

    instrument(Target("victims.shapes", "add", "victim.add", call_attributes=bad_extractor))
    from victims import shapes

    with caplog.at_level(logging.WARNING, logger="crossbridge_otel"):
        assert shapes.add(1, 2) == 3
        assert shapes.add(5) == 6
    warnings = [r for r in caplog.records if "attributes of victim.add" in r.getMessage()]
    assert len(warnings) == 1
    assert _guard.contained_failures()["attributes of victim.add"] == 2
    assert len(telemetry.spans("victim.add")) == 2


def test_outcome_failure_is_contained_and_result_returned(instrument, telemetry, lenient):
    """An outcome reader that raises never changes the call's return value."""
    instrument(Target("victims.shapes", "identity", "victim.identity", outcome=lambda r: 1 / 0))
    from victims import shapes

    token = object()
    assert shapes.identity(token) is token
    assert _guard.contained_failures()["outcome of victim.identity"] == 1


def test_strict_mode_reraises_instrumentation_failures(instrument):
    """Under CROSSBRIDGE_OTEL_STRICT (the project's tests) an extractor bug is re-raised, not hidden."""

    def bad_extractor(args, kwargs):
        raise KeyError("extractor bug")

    instrument(Target("victims.shapes", "add", "victim.add", call_attributes=bad_extractor))
    from victims import shapes

    with pytest.raises(KeyError):
        shapes.add(1)


def test_non_callable_target_is_reported_failed(instrument, lenient):
    """A target that names a non-callable attribute is reported as failed and left in place."""
    instrument(Target("victims.evidence", "raised", "victim.raised"))
    from victims import evidence

    assert isinstance(evidence.raised, list)
    row = state_of("victims.evidence", "raised")
    assert row.state == State.FAILED and "not callable" in row.detail


def test_class_target_is_refused_and_left_intact(instrument, lenient):
    """A target naming a class is reported failed instead of replacing the class with a function."""
    instrument(Target("victims.shapes", "Greeter", "victim.greeter"))
    from victims import shapes

    assert isinstance(shapes.Greeter, type)
    assert isinstance(shapes.LoudGreeter("a"), shapes.Greeter)
    row = state_of("victims.shapes", "Greeter")
    assert row.state == State.FAILED and "is a class" in row.detail
