"""What instrumentors read from CrossBridge's calls and results, written once for every area.

- **arguments**: :func:`arg` (by position, counting ``self``, or by keyword);
- **values fit to be attributes**: :func:`size` (counts, never contents), :func:`bounded` (redacted, cut),
  :func:`enum_value` / :func:`enum_text` (an enum member's value), :func:`file_name` (never the directory),
  :func:`host_of` (a URL's host, never its userinfo);
- **attribute names**: :class:`Prefix` (``P = Prefix("crossbridge.profiling.")``; ``P(backend="local")``,
  ``P.key("events")``, ``P.fields(obj, "enabled", total="total_tests")`` for an object's fields);
- **swallowed failures**: :func:`failed_if_false`, :func:`failed_if_none`, :func:`failed_if_empty` (with
  CrossBridge's own text when ``detail`` finds it).

Readers run on the call path: they never raise for odd values (and the engine contains them if they do).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from crossbridge_otel.redaction import redact

if TYPE_CHECKING:
    from crossbridge_otel.patching.targets import Failure

__all__ = [
    "MAX_TEXT", "Prefix", "arg", "bounded", "enum_text", "enum_value", "failed_if", "failed_if_empty",
    "failed_if_false", "failed_if_none", "file_name", "host_of", "size",
]

MAX_TEXT = 256
_MISSING = object()


def arg(args: Sequence[Any], kwargs: Mapping[str, Any], index: int, name: str, default: Any = None) -> Any:
    """The argument passed by position ``index`` (counting ``self``) or by keyword ``name``."""
    if len(args) > index:
        return args[index]
    value = kwargs.get(name, _MISSING)
    return default if value is _MISSING else value


def size(value: Any) -> int | None:
    """``len(value)`` when it has one, else None: counts, never contents, become attributes."""
    try:
        return len(value)
    except TypeError:
        return None


def bounded(text: Any, limit: int = MAX_TEXT) -> str | None:
    """``text`` redacted and cut to ``limit`` characters; None for None."""
    if text is None:
        return None
    value = redact(str(text))
    return value if len(value) <= limit else value[: limit - 1] + "…"


def enum_value(value: Any) -> Any:
    """``value.value`` for an enum member, the value itself otherwise (None stays None)."""
    return getattr(value, "value", value)


def enum_text(value: Any) -> str:
    """An enum member's value (or any value) as lower-case text, ``""`` for None: for comparing statuses."""
    return str(enum_value(value) or "").lower()


def file_name(path: Any) -> str | None:
    """The last component of a path (never the directory: bounded and free of user names)."""
    if path is None or path == "":
        return None
    return bounded(os.path.basename(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else path)


def host_of(url: Any) -> str | None:
    """The host of a URL (never its userinfo), None when there is none or it does not parse."""
    try:
        return urlparse(str(url)).hostname
    except ValueError:
        return None


class Prefix:
    """Attribute names under one prefix, e.g. ``P = Prefix("crossbridge.execution.")``:

    - ``P(status="failed", total=3)`` → ``{"crossbridge.execution.status": "failed", ...}``;
    - ``P.key("runs")`` → ``"crossbridge.execution.runs"``; ``P.child("trend")`` → the prefix ``...trend.``;
    - ``P.fields(summary, "passed", total="total_tests")``: ``summary``'s fields (attributes, or keys of a
      mapping) as attributes, named as they are or ``attribute=field``; None where the field is missing.
    """

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, **values: Any) -> dict[str, Any]:
        prefix = self.prefix
        return {prefix + name: value for name, value in values.items()}

    def key(self, name: str) -> str:
        return self.prefix + name

    def child(self, name: str) -> Prefix:
        return Prefix(f"{self.prefix}{name}.")

    def fields(self, obj: Any, *names: str, **renamed: str) -> dict[str, Any]:
        prefix = self.prefix
        if isinstance(obj, Mapping):
            read: Callable[[str], Any] = obj.get
        else:
            def read(field: str) -> Any:
                return getattr(obj, field, None)
        attributes = {prefix + name: read(name) for name in names}
        attributes.update((prefix + name, read(field)) for name, field in renamed.items())
        return attributes


def failed_if(failed: Callable[[Any], bool], error_type: str, description: str = "",
              detail: Callable[[], str | None] | None = None) -> Callable[[Any], Failure]:
    """Outcome for a failure CrossBridge swallows: ``(error_type, text)`` when ``failed(result)``; the text is
    CrossBridge's own when ``detail()`` finds it (its last ERROR log line, what it printed), else ``description``."""

    def outcome(result: Any) -> Failure:
        if not failed(result):
            return None
        return error_type, (detail() if detail is not None else None) or description

    return outcome


def failed_if_false(error_type: str = "returned_false", description: str = "",
                    detail: Callable[[], str | None] | None = None) -> Callable[[Any], Failure]:
    """Outcome for CrossBridge calls that swallow errors into a ``False`` return."""
    return failed_if(lambda result: result is False, error_type, description, detail)


def failed_if_none(error_type: str = "returned_none", description: str = "",
                   detail: Callable[[], str | None] | None = None) -> Callable[[Any], Failure]:
    """Outcome for calls that log or print an error and return ``None``."""
    return failed_if(lambda result: result is None, error_type, description, detail)


def failed_if_empty(error_type: str = "returned_empty", description: str = "",
                    detail: Callable[[], str | None] | None = None) -> Callable[[Any], Failure]:
    """Outcome for calls that return ``None`` or an empty collection on failure."""
    return failed_if(lambda result: not result, error_type, description, detail)
