"""Wrapped callables behave like the originals: metadata, descriptors, generators, coroutines, results."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from crossbridge_otel.patching.targets import Target
from crossbridge_otel.patching.wrapping import ORIGINAL_ATTR

S = "victims.shapes"
ALL = (
    Target(S, "add", "victim.add"),
    Target(S, "identity", "victim.identity"),
    Target(S, "boom", "victim.boom"),
    Target(S, "Greeter.greet", "victim.greet"),
    Target(S, "Greeter.shout", "victim.shout"),
    Target(S, "Greeter.make", "victim.make"),
    Target(S, "count_up", "victim.count_up"),
    Target(S, "resilient", "victim.resilient"),
    Target(S, "current_spans", "victim.current_spans"),
    Target(S, "fetch", "victim.fetch"),
    Target(S, "fail_later", "victim.fail_later"),
    Target(S, "stream", "victim.stream"),
    Target(S, "current_spans_async", "victim.current_spans_async"),
    Target(S, "CALLBACK", "victim.callback"),
)


@pytest.fixture
def shapes(instrument):
    """The victims module with every shape instrumented."""
    from victims import shapes as module

    originals = {name: getattr(module, name) for name in ("add", "count_up", "fetch", "stream")}
    instrument(*ALL)
    module.originals = originals
    return module


@pytest.mark.parametrize("name", ["add", "count_up", "fetch", "stream"])
def test_wrapper_keeps_name_qualname_doc_and_signature(shapes, name):
    """A wrapper keeps __name__, __qualname__, __doc__ and inspect.signature of the original."""
    original, wrapped = shapes.originals[name], getattr(shapes, name)
    assert wrapped is not original
    for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
        assert getattr(wrapped, attr) == getattr(original, attr)
    assert inspect.signature(wrapped) == inspect.signature(original)


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("count_up", inspect.isgeneratorfunction),
        ("fetch", inspect.iscoroutinefunction),
        ("stream", inspect.isasyncgenfunction),
    ],
)
def test_wrapper_keeps_the_function_flavour(shapes, name, check):
    """Generator, coroutine and async generator functions stay so once wrapped."""
    assert check(getattr(shapes, name))


def test_method_wrappers_keep_metadata(shapes):
    """Instance, static and class method wrappers keep their qualname, doc and signature."""
    for name, params in (("greet", ["self", "punctuation"]), ("shout", ["text"]), ("make", ["cls", "name"])):
        raw = shapes.Greeter.__dict__[name]
        func = getattr(raw, "__func__", raw)
        assert func.__qualname__ == f"Greeter.{name}"
        assert list(inspect.signature(func).parameters) == params
        assert func.__doc__
    assert list(inspect.signature(shapes.Greeter("x").greet).parameters) == ["punctuation"]


def test_instance_method_binds_self(shapes, telemetry):
    """An instance method wrapper still receives the instance."""
    assert shapes.Greeter("ada").greet("?") == "hello ada?"
    assert len(telemetry.spans("victim.greet")) == 1


def test_staticmethod_stays_static(shapes, telemetry):
    """A staticmethod wrapper receives no instance whether called on the class or an instance."""
    assert isinstance(shapes.Greeter.__dict__["shout"], staticmethod)
    assert shapes.Greeter.shout("a") == "A"
    assert shapes.Greeter("x").shout("b") == "B"
    assert len(telemetry.spans("victim.shout")) == 2


def test_classmethod_receives_the_class_it_was_called_on(shapes, telemetry):
    """A classmethod wrapper receives the class, including a subclass it was called through."""
    assert isinstance(shapes.Greeter.__dict__["make"], classmethod)
    assert type(shapes.LoudGreeter.make("b")) is shapes.LoudGreeter
    assert type(shapes.Greeter("x").make("c")) is shapes.Greeter
    assert len(telemetry.spans("victim.make")) == 2


def test_builtin_callable_keeps_descriptor_behaviour(shapes, telemetry):
    """A wrapped non-function callable stored on a module keeps working (len stays len)."""
    assert shapes.CALLBACK([1, 2, 3]) == 3
    assert len(telemetry.spans("victim.callback")) == 1


def test_same_return_value_object(shapes):
    """The wrapped call returns the very object the original returned."""
    token = object()
    assert shapes.identity(token) is token


def test_same_exception_object(shapes, telemetry):
    """The wrapped call raises the very exception object the original raised, and the span records it."""
    error = LookupError("no such thing")
    with pytest.raises(LookupError) as caught:
        shapes.boom(error)
    assert caught.value is error
    span = telemetry.span("victim.boom")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "LookupError"
    assert [e.name for e in span.events] == ["exception"]


def test_generator_send_and_return_value(shapes, telemetry):
    """A wrapped generator forwards send() and hands back the generator's return value."""
    gen = shapes.count_up(3)
    assert next(gen) == 0
    assert gen.send("a") == 1
    assert gen.send("b") == 2
    with pytest.raises(StopIteration) as stop:
        gen.send("c")
    assert stop.value.value == ["a", "b", "c"]
    span = telemetry.span("victim.count_up")
    assert span.status.status_code.name == "UNSET"


def test_generator_throw_is_forwarded(shapes, telemetry):
    """An exception thrown into a wrapped generator reaches the generator's own handler."""
    gen = shapes.resilient(3)
    assert next(gen) == 0
    assert gen.throw(ValueError("x")) == "caught"
    assert list(gen) == [1, 2]
    assert len(telemetry.spans("victim.resilient")) == 1


def test_generator_close_ends_the_span(shapes, telemetry):
    """Closing a wrapped generator early closes the original and ends the span without an error."""
    gen = shapes.count_up(5)
    next(gen)
    gen.close()
    span = telemetry.span("victim.count_up")
    assert span.end_time is not None
    assert span.status.status_code.name == "UNSET"


def test_generator_span_is_current_only_inside_its_code(shapes, telemetry):
    """The generator's span is current while its code runs and not in the consumer between steps."""
    from opentelemetry import trace

    outside = []
    inside = []
    for current in shapes.current_spans(2):
        inside.append(current)
        outside.append(trace.get_current_span())
    span = telemetry.span("victim.current_spans")
    assert {s.get_span_context().span_id for s in inside} == {span.context.span_id}
    assert all(not s.get_span_context().is_valid for s in outside)


def test_coroutine_result_and_span(shapes, telemetry):
    """A wrapped coroutine returns the original's value and records one span."""
    token = object()
    assert asyncio.run(shapes.fetch(token)) is token
    assert len(telemetry.spans("victim.fetch")) == 1


def test_coroutine_exception_object(shapes, telemetry):
    """A wrapped coroutine raises the very exception object and marks its span ERROR."""
    error = TimeoutError("slow")
    with pytest.raises(TimeoutError) as caught:
        asyncio.run(shapes.fail_later(error))
    assert caught.value is error
    assert telemetry.span("victim.fail_later").attributes["error.type"] == "TimeoutError"


def test_async_generator_values_asend_and_athrow(shapes, telemetry):
    """A wrapped async generator forwards asend() and athrow() to the original."""

    async def drive():
        agen = shapes.stream(3)
        got = [await agen.__anext__()]
        got.append(await agen.asend("hi"))
        got.append(await agen.__anext__())
        got.append(await agen.athrow(ValueError("x")))
        got.extend([item async for item in agen])
        return got

    assert asyncio.run(drive()) == [0, ("got", "hi"), 1, "caught", 2]
    assert telemetry.span("victim.stream").status.status_code.name == "UNSET"


def test_async_generator_aclose_ends_the_span(shapes, telemetry):
    """Closing a wrapped async generator early ends its span without an error."""

    async def drive():
        agen = shapes.stream(5)
        await agen.__anext__()
        await agen.aclose()

    asyncio.run(drive())
    span = telemetry.span("victim.stream")
    assert span.end_time is not None and span.status.status_code.name == "UNSET"


def test_async_generator_span_is_current_inside_its_code(shapes, telemetry):
    """The async generator's span is current while its own code runs, and not in the consumer."""
    from opentelemetry import trace

    async def drive():
        inside, outside = [], []
        async for current in shapes.current_spans_async(2):
            inside.append(current)
            outside.append(trace.get_current_span())
        return inside, outside

    inside, outside = asyncio.run(drive())
    span = telemetry.span("victim.current_spans_async")
    assert {s.get_span_context().span_id for s in inside} == {span.context.span_id}
    assert all(not s.get_span_context().is_valid for s in outside)


def test_wrapper_points_at_its_original(shapes):
    """Each wrapper exposes the original it replaced (for the doctor and for uninstrument)."""
    assert getattr(shapes.add, ORIGINAL_ATTR) is shapes.originals["add"]


def test_builtin_on_a_class_still_does_not_bind_self(instrument, telemetry):
    """A builtin stored on a class is wrapped so that calling it through an instance passes no self."""
    from victims import shapes

    instrument(Target(S, "Tools.measure", "victim.measure"))
    assert shapes.Tools().measure("abc") == 3
    assert len(telemetry.spans("victim.measure")) == 1
