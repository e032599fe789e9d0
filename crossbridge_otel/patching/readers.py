"""What instrumentors read from CrossBridge's calls and results, written once for every area.

- **arguments**: :func:`arg` (by position, counting ``self``, or by keyword);
- **values fit to be attributes**: :func:`size` (counts, never contents), :func:`bounded` (redacted, cut),
  :func:`enum_value` / :func:`enum_text` (an enum member's value), :func:`file_name` (never the directory),
  :func:`host_of` (a URL's host, never its userinfo);
- **attribute names**: :class:`Prefix` (``P = Prefix("crossbridge.profiling.")``; ``{P.backend: "local"}``) and
  :func:`fields`, a reader of an object's fields as prefixed attributes (``fields(P, "enabled", total="total_tests")``);
- **swallowed failures**: :func:`failed_if_false`, :func:`failed_if_none`, :func:`failed_if_empty` (with
  CrossBridge's own text when ``detail`` finds it).

Readers run on the call path: they never raise for odd values (and the engine contains them if they do).
"""

from __future__ import annotations

import functools
import operator
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from crossbridge_otel.redaction import redact

if TYPE_CHECKING:
    from crossbridge_otel.patching.targets import Failure

__all__ = [
    "MAX_TEXT", "Prefix", "arg", "bounded", "enum_text", "enum_value", "failed_if", "failed_if_empty",
    "failed_if_false", "failed_if_none", "fields", "file_name", "host_of", "size",
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
    """Attribute names under one prefix, e.g. ``P = Prefix("crossbridge.execution.")``: ``P.status`` is
    ``"crossbridge.execution.status"``, ``P["retry.max_attempts"]`` any name. A name is joined once, then kept
    as a plain attribute of the prefix, so ``{P.status: ..., P.total: ...}`` costs what the literal would."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix

    def __getattr__(self, name: str) -> str:
        if name.startswith("__"):  # copy, pickle and friends look for dunders: there are none
            raise AttributeError(name)
        key = self._prefix + name
        setattr(self, name, key)
        return key

    def __getitem__(self, name: str) -> str:
        key: str = self.__dict__.get(name) or self.__getattr__(name)
        return key

    def __str__(self) -> str:
        return self._prefix


def fields(prefix: Prefix, *names: str, **renamed: str) -> Callable[[Any], dict[str, Any]]:
    """A reader of an object's fields as prefixed attributes, made once: ``fields(P, "passed", total="total_tests")``
    gives ``read(obj)`` → ``{P.passed: obj.passed, P.total: obj.total_tests}`` (keys of a dict; None where a
    field is missing)."""
    pairs = tuple((prefix[name], name) for name in names) + tuple((prefix[key], f) for key, f in renamed.items())

    def read(obj: Any) -> dict[str, Any]:
        if type(obj) is dict:
            get = obj.get
            return {key: get(field) for key, field in pairs}
        return {key: getattr(obj, field, None) for key, field in pairs}

    return read


# The tests of the outcomes below, as C callables: they run after every call of their rows.
_IS_FALSE: Callable[[Any], bool] = functools.partial(operator.is_, False)
_IS_NONE: Callable[[Any], bool] = functools.partial(operator.is_, None)


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
    return failed_if(_IS_FALSE, error_type, description, detail)


def failed_if_none(error_type: str = "returned_none", description: str = "",
                   detail: Callable[[], str | None] | None = None) -> Callable[[Any], Failure]:
    """Outcome for calls that log or print an error and return ``None``."""
    return failed_if(_IS_NONE, error_type, description, detail)


def failed_if_empty(error_type: str = "returned_empty", description: str = "",
                    detail: Callable[[], str | None] | None = None) -> Callable[[Any], Failure]:
    """Outcome for calls that return ``None`` or an empty collection on failure."""
    return failed_if(operator.not_, error_type, description, detail)
