"""Repo instrumentation: ``core.repo.bitbucket.BitbucketConnector`` and ``translate_repo_to_connector``.

Enabled under ``opentelemetry-instrument`` as ``crossbridge_repo``,
its name in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``; in code::

    from crossbridge_otel.instrumentors.repo import RepoInstrumentor
    RepoInstrumentor().instrument(tracer_provider=..., meter_provider=...)

Every span carries ``crossbridge.area=repo``, ``crossbridge.category=governance`` (the Bitbucket module's
category) and ``code.function.name``, plus ``crossbridge.repo.provider`` (bitbucket), ``owner``, ``name``,
``cloud`` and ``base_branch``. Attribute names are short for ``crossbridge.repo.<name>``. What is traced:

- ``repo.connect`` (``translate_repo_to_connector``): ``host`` (never the userinfo of the URL), ``connector``
  (class). Only Bitbucket works in CrossBridge: GitHub's ``TypeError ... 'org'`` is recorded and re-raised.
- ``repo.<method>`` for every public ``BitbucketConnector`` method: ``list_branches``, ``get_branch``,
  ``create_branch``, ``delete_branch``, ``list_files``, ``list_all_files``, ``read_file``, ``file_exists``,
  ``has_files``, ``find_branch_with_content``, ``write_file``, ``write_files``, ``delete_file``,
  ``create_pull_request``, ``get_pull_request``, ``list_pull_requests``. Attributes: ``path``, ``branch``,
  ``pr_number``, ``files`` (count), ``items`` (count returned), ``bytes`` (size read), ``exists``. The
  connector's exceptions are recorded and re-raised as they are. Against Bitbucket Cloud that is mostly
  ``requests.HTTPError``: the atlassian client raises it with Bitbucket's own message ("No such file or
  directory: x"), which has no "404" in it, so CrossBridge's ``FileNotFoundError`` mapping does not apply
  (and ``file_exists`` raises instead of returning False); ``list_branches``, ``list_pull_requests``,
  ``write_files`` and ``create_pull_request`` wrap failures in a plain ``Exception``.
- Retries: the idempotent reads ``read_file``, ``list_files``, ``list_all_files``, ``list_branches``,
  ``get_branch``, ``get_pull_request`` run under the ``quick`` policy of :mod:`crossbridge_otel.retry.invoker`
  (a 429/5xx ``HTTPError`` is retried; the plain ``Exception`` wrappers and 4xx are not). Writes are never
  retried. ``create_pull_request`` has CrossBridge's own retry (3 tries, sleeping 60 s then 120 s when the
  error text contains "429", as Bitbucket's plain-text 429 gives): each try is one ``post`` of the
  connector's atlassian client, each failed try a ``retry`` event on the span, with ``retry.attempts``; no
  retry is added.
- HTTP: the connector calls ``requests`` (through the atlassian client and directly); with
  opentelemetry-instrumentation-requests (the ``libraries`` extra) each HTTP call is a client span under the
  ``repo.*`` span. The token and username are never attributes: ``Authorization`` headers are not captured
  (masked if a user turns header capture on), and URLs and exception messages are redacted
  (:mod:`crossbridge_otel.libraries`, :mod:`crossbridge_otel.redaction`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from crossbridge_otel.patching.instrumentor import CrossBridgeInstrumentor
from crossbridge_otel.patching.readers import Prefix, arg, bounded, host_of, size
from crossbridge_otel.patching.targets import Attrs, Target
from crossbridge_otel.retry.attempts import AttemptLog
from crossbridge_otel.retry.invoker import Retry
from crossbridge_otel.retry.observed import ObservedRetry, Tap

__all__ = ["READS", "WRITES", "RepoInstrumentor"]

_P = Prefix("crossbridge.repo.")
_BITBUCKET = "core.repo.bitbucket"
_PR_ATTEMPTS = 3  # CrossBridge's create_pull_request loop: range(3)


def _connector(self: Any) -> dict[str, Any]:
    return {_P.provider: "bitbucket", _P.owner: bounded(getattr(self, "owner", None), 128),
            _P.name: bounded(getattr(self, "repo", None), 128), _P.cloud: getattr(self, "is_cloud", None),
            _P.base_branch: bounded(getattr(self, "base_branch", None), 128)}


# (argument index counting self, keyword name, attribute, reader)
_Arg = tuple[int, str, str, Callable[[Any], Any]]


def _call(*extra: _Arg) -> Callable[[tuple[Any, ...], dict[str, Any]], Attrs]:
    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
        attrs = _connector(args[0]) if args else {}
        for index, name, key, read in extra:
            value = arg(args, kwargs, index, name)
            if value is not None:
                attrs[_P[key]] = read(value)
        return attrs

    return call


_PATH: _Arg = (1, "path", "path", bounded)


def _branch(index: int, name: str = "branch") -> _Arg:
    return (index, name, "branch", bounded)


def _items(result: Any) -> Attrs:
    return {_P.items: size(result)}


def _bytes(result: Any) -> Attrs:
    # text from Bitbucket Cloud, bytes from Server; the atlassian client returns a .json file parsed (a dict)
    return {_P.bytes: size(result) if isinstance(result, (str, bytes)) else None}


def _pr(result: Any) -> Attrs:
    return {_P.pr_number: getattr(result, "number", None)}


class _PostTaps:
    """Per-thread taps on an atlassian client's ``post``, for observing ``create_pull_request``'s own loop.

    While any call observes a client, its ``post`` is a dispatcher that sends this thread's calls through
    the thread's tap and every other thread's straight to the original; the last observer out restores it.
    So concurrent PR creations on one shared connector each see only their own tries, and nothing is left
    behind on the client.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[int, tuple[Any, int, bool]] = {}  # id(client) -> (original post, users, had own attr)
        self._local = threading.local()

    def original(self, client: Any) -> Any:
        with self._lock:
            entry = self._users.get(id(client))
        return entry[0] if entry is not None else getattr(client, "post", None)

    def add(self, client: Any, tap: Callable[..., Any]) -> Any:
        """Send this thread's ``client.post`` calls to ``tap``; returns what ``remove`` needs."""
        key = id(client)
        with self._lock:
            entry = self._users.get(key)
            if entry is None:
                original, had_own = client.post, "post" in getattr(client, "__dict__", {})
                taps = self._local

                def dispatch(*a: Any, **kw: Any) -> Any:
                    mine = getattr(taps, "by_client", {}).get(key)
                    return (mine or original)(*a, **kw)

                client.post = dispatch
                entry = (original, 0, had_own)
            self._users[key] = (entry[0], entry[1] + 1, entry[2])
        mine: dict[int, Any] = self._local.__dict__.setdefault("by_client", {})
        previous = mine.get(key)
        mine[key] = tap
        return previous

    def remove(self, client: Any, previous: Any) -> None:
        key = id(client)
        mine: dict[int, Any] = self._local.__dict__.setdefault("by_client", {})
        if previous is None:
            mine.pop(key, None)
        else:
            mine[key] = previous
        with self._lock:
            original, users, had_own = self._users[key]
            if users > 1:
                self._users[key] = (original, users - 1, had_own)
                return
            del self._users[key]
            if had_own:
                client.post = original
            else:
                del client.post


_TAPS = _PostTaps()


def _tap_pr_posts(attempts: AttemptLog, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tap | None:
    """CrossBridge's PR retry: every try is one ``post`` of the connector's atlassian client (Cloud calls
    ``client.post``; Server's ``client.create_pull_request`` calls ``self.post``)."""
    client = getattr(args[0], "client", None)
    post = _TAPS.original(client) if client is not None else None
    if not callable(post):
        return None
    try:
        previous = _TAPS.add(client, attempts.wrap(post))
    except (AttributeError, TypeError):  # a client that takes no instance attributes: call untouched
        return None
    return args, kwargs, lambda: _TAPS.remove(client, previous)


def _connect_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Attrs:
    return {_P.host: host_of(arg(args, kwargs, 0, "repo_url"))}


# method → (extra call attributes, result attributes, span name suffix)
READS: dict[str, tuple[tuple[_Arg, ...], Callable[[Any], Attrs] | None]] = {
    "list_branches": ((), _items),
    "get_branch": ((_branch(1, "branch_name"),), None),
    "list_files": ((_PATH, _branch(2)), _items),
    "list_all_files": ((_PATH, _branch(2)), _items),
    "read_file": ((_PATH, _branch(2)), _bytes),
    "get_pull_request": (((1, "pr_number", "pr_number", int),), None),
}
WRITES: dict[str, tuple[tuple[_Arg, ...], Callable[[Any], Attrs] | None]] = {
    "create_branch": ((_branch(1, "branch_name"),), None),
    "delete_branch": ((_branch(1, "branch_name"),), None),
    "write_file": ((_PATH, _branch(4)), None),
    "write_files": (((1, "files", "files", size), _branch(3)), None),
    "delete_file": ((_PATH, _branch(3)), None),
}
_OTHER: dict[str, tuple[tuple[_Arg, ...], Callable[[Any], Attrs] | None]] = {
    "file_exists": ((_PATH, _branch(2)), lambda r: {_P.exists: bool(r)}),
    "has_files": ((_branch(1),), lambda r: {_P.has_files: bool(r)}),
    "find_branch_with_content": ((), lambda r: {_P.found: r is not None}),
    "list_pull_requests": (((1, "state", "state", bounded),), _items),
}


def _targets() -> tuple[Target, ...]:
    rows: list[Target] = [Target("core.repo.repo_translator", "translate_repo_to_connector", "repo.connect",
                                 call_attributes=_connect_call,
                                 result_attributes=lambda c: {_P.connector: type(c).__name__})]
    for method, (extra, result) in READS.items():
        rows.append(Target(_BITBUCKET, f"BitbucketConnector.{method}", f"repo.{method}", call_attributes=_call(*extra),
                           result_attributes=result, invokers=(Retry("quick"),)))
    for method, (extra, result) in {**WRITES, **_OTHER}.items():
        rows.append(Target(_BITBUCKET, f"BitbucketConnector.{method}", f"repo.{method}", call_attributes=_call(*extra),
                           result_attributes=result))
    pr = (_branch(3, "source_branch"), (4, "target_branch", "target_branch", bounded), (5, "draft", "draft", bool))
    rows.append(Target(_BITBUCKET, "BitbucketConnector.create_pull_request", "repo.create_pull_request",
                       call_attributes=_call(*pr),
                       result_attributes=_pr,
                       invokers=(ObservedRetry("BitbucketConnector.create_pull_request 429 retry", _PR_ATTEMPTS,
                                               _tap_pr_posts),)))
    return tuple(rows)


class RepoInstrumentor(CrossBridgeInstrumentor):
    """Traces CrossBridge's repository connectors: see the module docstring for the table."""

    area = "repo"
    category = "governance"
    targets = _targets()
