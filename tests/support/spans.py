"""Small span helpers for the area tests (a unique module name: test dirs share sys.path)."""

from __future__ import annotations

from typing import Any


def trace_of(span: Any) -> int:
    return span.context.trace_id


def parent_of(span: Any) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def retry_events(span: Any) -> list[Any]:
    return [e for e in span.events if e.name == "retry"]


def children(spans: list[Any], parent: Any) -> list[Any]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]
