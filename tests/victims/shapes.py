"""Callables of every shape the engine must wrap without changing behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from opentelemetry import trace


def add(a: int, b: int = 1) -> int:
    """Add two numbers."""
    return a + b


def identity(value: Any) -> Any:
    """Return the very object it was given."""
    return value


def boom(exc: BaseException) -> None:
    """Raise the exception it was given."""
    raise exc


def maybe(value: Any) -> Any:
    """Return ``value``; the tests read ``False`` as a swallowed failure."""
    return value


class Greeter:
    """A class with an instance, a static and a class method."""

    def __init__(self, name: str) -> None:
        self.name = name

    def greet(self, punctuation: str = "!") -> str:
        """Say hello."""
        return f"hello {self.name}{punctuation}"

    @staticmethod
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    @classmethod
    def make(cls, name: str) -> Greeter:
        """Build an instance of ``cls``."""
        return cls(name)


class LoudGreeter(Greeter):
    """Inherits ``greet`` from :class:`Greeter`."""


def count_up(n: int) -> Iterator[int]:
    """Yield 0..n-1, collect what is sent in, return the collected values."""
    received = []
    for i in range(n):
        got = yield i
        if got is not None:
            received.append(got)
    return received


def resilient(n: int) -> Iterator[Any]:
    """Yield 0..n-1; a thrown ValueError is caught and answered with the string 'caught'."""
    i = 0
    while i < n:
        try:
            yield i
        except ValueError:
            yield "caught"
        i += 1


def current_spans(n: int) -> Iterator[Any]:
    """Yield the span that is current while the generator's own code runs."""
    for _ in range(n):
        yield trace.get_current_span()


async def fetch(value: Any) -> Any:
    """Await once, then return ``value``."""
    await asyncio.sleep(0)
    return value


async def fail_later(exc: BaseException) -> None:
    """Await once, then raise ``exc``."""
    await asyncio.sleep(0)
    raise exc


async def stream(n: int) -> AsyncIterator[Any]:
    """Yield 0..n-1; a sent value is yielded back as ('got', value); a ValueError thrown in yields 'caught'."""
    i = 0
    while i < n:
        try:
            got = yield i
        except ValueError:
            got = None
            yield "caught"
        if got is not None:
            yield ("got", got)
        i += 1


async def current_spans_async(n: int) -> AsyncIterator[Any]:
    """Yield the span that is current while the async generator's own code runs."""
    for _ in range(n):
        await asyncio.sleep(0)
        yield trace.get_current_span()


CALLBACK: Callable[..., Any] = len


class Tools:
    """A builtin stored on a class: it does not bind ``self``."""

    measure = len
