"""Patching and unpatching: on import, in place, aliases, idempotence, exact restoration."""

from __future__ import annotations

import importlib

from support.engine import state_of

from crossbridge_otel.patching import importhooks as hooks
from crossbridge_otel.patching.status import State
from crossbridge_otel.patching.targets import Target
from crossbridge_otel.patching.wrapping import ORIGINAL_ATTR

ADD = Target("victims.shapes", "add", "victim.add")


def test_module_imported_later_is_patched_on_import(instrument, telemetry):
    """A target module imported after instrumentation is patched by its post-import hook."""
    instrument(ADD)
    assert state_of("victims.shapes", "add").state == State.WAITING
    from victims import shapes

    assert shapes.add(2, 3) == 5
    assert [s.name for s in telemetry.spans()] == ["victim.add"]
    row = state_of("victims.shapes", "add")
    assert (row.state, row.detail) == (State.PATCHED, "patched on import")


def test_already_imported_module_is_patched_in_place(instrument, telemetry):
    """A module imported before instrumentation is patched in place, and the status says so."""
    from victims import shapes

    instrument(ADD)
    assert shapes.add(1) == 2
    assert len(telemetry.spans("victim.add")) == 1
    assert "already imported" in state_of("victims.shapes", "add").detail


def test_from_import_alias_is_rebound_and_restored(instrument, telemetry):
    """A ``from module import name`` alias bound before instrumentation is rebound, then restored."""
    from victims import shapes, user

    original = shapes.add
    inst = instrument(ADD)
    assert user.add is shapes.add and user.add is not original
    assert user.use() == 3
    assert len(telemetry.spans("victim.add")) == 1
    assert "1 alias(es) rebound" in state_of("victims.shapes", "add").detail
    inst.uninstrument()
    assert user.add is original and shapes.add is original


def test_instrumenting_twice_wraps_once(instrument, telemetry):
    """Two instrumentors (or two instrument calls) on one target leave a single wrapper: one span per call."""
    from victims import shapes

    original = shapes.add
    first = instrument(ADD)
    wrapped = shapes.add
    first.instrument(**telemetry.providers)
    instrument(ADD, area="other")
    assert shapes.add is wrapped
    assert getattr(wrapped, ORIGINAL_ATTR) is original
    shapes.add(1)
    assert len(telemetry.spans("victim.add")) == 1


def test_uninstrument_restores_the_exact_objects(instrument):
    """uninstrument() puts back the very objects found, staticmethod and classmethod objects included."""
    from victims import shapes

    before = {name: shapes.Greeter.__dict__[name] for name in ("greet", "shout", "make")}
    add = shapes.add
    inst = instrument(
        ADD,
        Target("victims.shapes", "Greeter.greet", "victim.greet"),
        Target("victims.shapes", "Greeter.shout", "victim.shout"),
        Target("victims.shapes", "Greeter.make", "victim.make"),
    )
    assert all(shapes.Greeter.__dict__[name] is not raw for name, raw in before.items())
    inst.uninstrument()
    assert all(shapes.Greeter.__dict__[name] is raw for name, raw in before.items())
    assert shapes.add is add
    assert state_of("victims.shapes", "add").state == State.REMOVED


def test_uninstrument_deletes_a_wrapper_of_an_inherited_method(instrument, telemetry):
    """A target inherited by a subclass is wrapped on the subclass only and deleted from it afterwards."""
    from victims import shapes

    inst = instrument(Target("victims.shapes", "LoudGreeter.greet", "victim.greet"))
    assert "greet" in shapes.LoudGreeter.__dict__
    assert shapes.Greeter("a").greet() == "hello a!"
    assert telemetry.spans() == []
    assert shapes.LoudGreeter("b").greet("?") == "hello b?"
    assert len(telemetry.spans("victim.greet")) == 1
    inst.uninstrument()
    assert "greet" not in shapes.LoudGreeter.__dict__
    assert shapes.LoudGreeter.greet is shapes.Greeter.greet


def test_uninstrument_drops_pending_hooks(instrument):
    """Hooks for modules not imported yet are dropped, so a later import leaves the module untouched."""
    inst = instrument(ADD)
    assert "victims.shapes" in hooks.pending_modules()
    inst.uninstrument()
    assert "victims.shapes" not in hooks.pending_modules()
    shapes = importlib.import_module("victims.shapes")
    assert not hasattr(shapes.add, ORIGINAL_ATTR)
    assert state_of("victims.shapes", "add").state == State.REMOVED


def test_reinstrument_after_uninstrument_patches_again(instrument, telemetry):
    """An instrumentor that was removed can be applied again and records again."""
    from victims import shapes

    inst = instrument(ADD)
    inst.uninstrument()
    inst.instrument(**telemetry.providers)
    shapes.add(1)
    assert len(telemetry.spans("victim.add")) == 1



def test_wrapper_kept_elsewhere_stops_recording_after_uninstrument(instrument, telemetry):
    """A wrapper someone kept a reference to before uninstrument() is a plain pass-through afterwards."""
    from victims import shapes

    inst = instrument(ADD)
    kept = shapes.add
    assert kept(2, 3) == 5
    assert len(telemetry.spans("victim.add")) == 1
    inst.uninstrument()
    assert shapes.add is not kept
    assert kept(4, 5) == 9
    assert len(telemetry.spans("victim.add")) == 1
