"""What is worth retrying: a verdict per exception, decided by class name, never by importing a library.

Transient (retried):

- psycopg2 ``OperationalError`` (and its ``psycopg2.errors`` subclasses: admin shutdown, serialization
  failure, deadlock, query cancelled) and ``InterfaceError`` (connection already closed), except
  authentication and "does not exist" failures reported through ``OperationalError``;
- sqlite3 ``OperationalError`` saying the database (or a table) is locked or busy;
- requests ``ConnectionError``/``Timeout``, httpx ``TransportError`` (connect, read, write, pool, protocol),
  urllib3 connection errors, builtin ``ConnectionError``/``TimeoutError``;
- an HTTP error carrying status 429 or 5xx (not 501/505), from requests, httpx, urllib or InfluxDB's
  client (``status``); its ``Retry-After`` header (seconds or HTTP date) becomes the delay, capped by the policy;
- CrossBridge's own ``RetryableError`` family and ``core.repo`` ``RateLimitError``.

Never retried: integrity, programming, data and not-supported database errors, parse errors (XML, JSON,
``ValueError``), authentication failures, HTTP 4xx other than 429, anything not listed above, and a host that
cannot be reached at all, whatever class carries it: a name that does not resolve (libpq's ``could not translate
host name``, ``Name or service not known``, urllib3's ``NameResolutionError``) or a network that is unreachable
(``Network is unreachable``, ``No route to host``). The resolver's own *temporary* failure (``EAI_AGAIN``,
``Temporary failure in name resolution``: no resolver answered) stays transient: that is a DNS blip on a runner,
which a retry does outlast.
A database restarting refuses connections on a host that resolves and routes; these say the address is wrong
or the machine is off the network, which a few seconds of waiting does not change (and a restart-length wait
would be paid by every start of a host configured that way).

A *refused* connection stays transient: it is what a restarting server looks like, and it is also what an
absent one looks like. Telling them apart is left to the policy of the call: ``initialize`` of a profiling
storage backend runs on the application's thread at start-up and gets ``quick`` (one more attempt within 0.1 s);
writes on the collector's flush thread get ``restart`` (30 s) where waiting costs the application nothing.

``Verdict.before_request`` is True only when the failure certainly happened before the server could apply
anything (connection refused or not established, HTTP 429/503): the only failures a non-idempotent call is
retried on when no finer evidence (see ``crossbridge_otel.retry.swallowed``) is available.
"""

from __future__ import annotations

import email.utils
import re
import socket
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Verdict", "classify", "http_status", "is_database_error", "retry_after"]


@dataclass(frozen=True)
class Verdict:
    """Whether to retry, why (a short reason for logs and docs), and a server-requested delay."""

    transient: bool
    reason: str
    retry_after: float | None = None
    before_request: bool = False


_TRANSIENT_CLASSES = {
    "psycopg2.OperationalError": "database connection or server state",
    "psycopg2.InterfaceError": "database connection closed",
    "requests.exceptions.ConnectionError": "connection error",
    "requests.exceptions.Timeout": "timeout",
    "httpx.TransportError": "transport error",
    "httpx.TimeoutException": "timeout",
    "urllib3.exceptions.NewConnectionError": "connection error",
    "urllib3.exceptions.ProtocolError": "connection error",
    "urllib3.exceptions.MaxRetryError": "connection error",
    "builtins.ConnectionError": "connection error",
    "builtins.TimeoutError": "timeout",
    "core.runtime.retry.RetryableError": "CrossBridge retryable error",
    "core.repo.base.RateLimitError": "rate limited",
}
_PERMANENT_CLASSES = (
    "psycopg2.IntegrityError", "psycopg2.ProgrammingError", "psycopg2.DataError", "psycopg2.NotSupportedError",
    "sqlite3.IntegrityError", "sqlite3.ProgrammingError", "sqlite3.DataError",
    "core.runtime.retry.NonRetryableError", "core.repo.base.AuthenticationError",
    "builtins.SyntaxError", "builtins.ValueError",
)
_HTTP_ERROR_CLASSES = (
    "requests.exceptions.HTTPError", "httpx.HTTPStatusError", "urllib.error.HTTPError",
    "influxdb_client.rest.ApiException", "influxdb_client.client.exceptions.InfluxDBError",
)
_BEFORE_REQUEST_CLASSES = (
    "requests.exceptions.ConnectTimeout", "httpx.ConnectError", "httpx.ConnectTimeout", "httpx.PoolTimeout",
    "urllib3.exceptions.NewConnectionError", "builtins.ConnectionRefusedError",
)
_PG_PERMANENT = re.compile(r"authentication failed|no pg_hba\.conf entry|does not exist|permission denied", re.I)
_NOT_CONNECTED = re.compile(r"connection refused|could not connect|failed to establish a new connection", re.I)
# The host cannot be reached at all (see the module docstring): checked in the text of any exception and its causes.
_UNREACHABLE = re.compile(
    r"could not translate host name|name or service not known|nodename nor servname|failed to resolve"
    r"|getaddrinfo failed|network is unreachable|no route to host", re.I)
_UNREACHABLE_CLASSES = ("urllib3.exceptions.NameResolutionError", "socket.gaierror")
_DNS_TEMPORARY = re.compile(r"temporary failure in name resolution", re.I)  # EAI_AGAIN: transient (docstring)
_SQLITE_BUSY = re.compile(r"database (table )?is locked|database is busy", re.I)
_STATUS_IN_TEXT = re.compile(r"\b([45]\d\d)\b")


def _names(exc: BaseException) -> set[str]:
    return {f"{k.__module__}.{k.__qualname__}" for k in type(exc).__mro__}


def _unreachable(exc: BaseException) -> bool:
    """A name that does not resolve or a network that is unreachable, in ``exc`` or a cause it wraps (requests and
    httpx keep it as a cause or context); a temporary resolver failure anywhere in the chain is not."""
    seen: set[int] = set()
    found = False
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        text = str(link)
        if _DNS_TEMPORARY.search(text) or getattr(link, "errno", None) == socket.EAI_AGAIN:
            return False
        found = found or bool(_names(link).intersection(_UNREACHABLE_CLASSES) or _UNREACHABLE.search(text))
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return found


def is_database_error(exc: BaseException) -> bool:
    """A DB-API error (``DatabaseError``/``InterfaceError`` family): its transaction dies with the connection."""
    return any(k.__name__ in ("DatabaseError", "InterfaceError") for k in type(exc).__mro__)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an exception carries (``response.status_code``, ``status`` or ``code``), if any."""
    response = getattr(exc, "response", None)
    for holder, attr in ((response, "status_code"), (response, "status"), (exc, "status"), (exc, "code")):
        value = getattr(holder, attr, None) if holder is not None else None
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    return None


def retry_after(exc: BaseException, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header on the exception's response (delta seconds or an HTTP date)."""
    response = getattr(exc, "response", None)
    headers: Any = getattr(response, "headers", None) or getattr(exc, "headers", None)
    if not headers:
        return None
    try:
        raw = headers.get("Retry-After") or headers.get("retry-after")
    except Exception:
        return None
    if not raw:
        return None
    text = str(raw).strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _http_verdict(exc: BaseException, status: int) -> Verdict:
    if status == 429 or (500 <= status <= 599 and status not in (501, 505)):
        return Verdict(True, f"HTTP {status}", retry_after(exc), before_request=status in (429, 503))
    return Verdict(False, f"HTTP {status}")


def classify(exc: BaseException) -> Verdict:
    """The retry verdict for ``exc`` (see the module docstring for the table)."""
    names = _names(exc)
    text = str(exc)
    if names.intersection(_HTTP_ERROR_CLASSES):
        status = http_status(exc)
        if status is None:
            match = _STATUS_IN_TEXT.search(text)
            status = int(match.group(1)) if match else None
        if status is not None:
            return _http_verdict(exc, status)
    if "sqlite3.OperationalError" in names:
        busy = bool(_SQLITE_BUSY.search(text))
        return Verdict(busy, "sqlite database locked" if busy else "sqlite operational error")
    for name in _PERMANENT_CLASSES:
        if name in names:
            return Verdict(False, name.rsplit(".", 1)[-1])
    if _unreachable(exc):
        return Verdict(False, "host unresolvable or unreachable")
    if "psycopg2.OperationalError" in names and _PG_PERMANENT.search(text):
        return Verdict(False, "database authentication or configuration")
    for name, reason in _TRANSIENT_CLASSES.items():
        if name in names:
            before = bool(names.intersection(_BEFORE_REQUEST_CLASSES)) or bool(_NOT_CONNECTED.search(text))
            return Verdict(True, reason, before_request=before)
    return Verdict(False, "not a known transient failure")
