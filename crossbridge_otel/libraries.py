"""The contrib instrumentations of the libraries CrossBridge uses, and how this distribution configures them.

Their spans sit *under* ours: a ``repo.read_file`` span has the ``requests`` ``GET`` as its child, a
``coverage.repository.*`` span has the ``sqlite3`` statements; our ``cli.command`` is the root of a whole command.
They come from opentelemetry-python-contrib (``pip install crossbridge-otel[libraries]``; ``psycopg2`` and
``threading`` are plain dependencies) and ``opentelemetry-instrument`` loads them with ours.

================  =========================================  ==============================================
library           CrossBridge user                           where its spans sit
================  =========================================  ==============================================
click             plain click commands                       roots (Typer's vendored click is not seen)
requests          ``BitbucketConnector``, ``ProfilingSession``  children of ``repo.*`` / ``profiling.*``
httpx             ``RemoteSidecarClient``                    children of ``services.sidecar.send``
sqlite3           ``CoverageRepository``                     children of ``coverage.repository.*``
sqlalchemy        ``FunctionalCoverageRepository``, schema   children of ``coverage.functional.*``
psycopg2          ``PostgresStorageBackend``, hook SDK       children of ``profiling.storage.*``
fastapi           the sidecar API                            roots (server spans), with our attributes
threading         thread pools of strategies/orchestrators   (no spans) keeps the parent in worker threads
================  =========================================  ==============================================

Configuration added here (:func:`instrument_kwargs`, passed by the distro to each ``instrument()``):

- ``requests`` / ``httpx``: a request hook that runs :func:`crossbridge_otel.redaction.redact` over the URL
  attributes (``url.full`` / ``http.url``): userinfo, ``token=``/``key=``-style query values are masked on
  top of contrib's own URL redaction.
- ``psycopg2``: SQL parameter values are captured only with ``CROSSBRIDGE_OTEL_CAPTURE_SQL_PARAMETERS=true``
  (``sqlite3`` never captures them; statement text is the contrib default, ``db.statement``).
- ``psycopg2`` / ``sqlite3`` (the contrib DB-API integration): :func:`redact` runs over the captured parameters,
  and over a statement that holds a quoted literal (the only place a secret can sit in SQL text), on the live
  span before the query runs, so no processor or exporter ever sees them raw (:func:`_redact_sql_spans`).
- Header capture stays off (contrib default); if a user turns it on with
  ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*``, :data:`ENV_DEFAULTS` makes the sanitizer mask
  credential headers (``Authorization``, cookies, keys, tokens).

:func:`instrument` / :func:`uninstrument` do the same in code (tests, applications without
``opentelemetry-instrument``); a missing library is skipped.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.trace import Span, get_current_span

from crossbridge_otel._guard import report_failure

__all__ = ["ENV_DEFAULTS", "LIBRARIES", "Library", "instrument", "instrument_kwargs", "uninstrument"]

ENV_DEFAULTS = {
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS":
        "authorization,proxy-authorization,cookie,set-cookie,.*token.*,.*secret.*,.*password.*,.*api[-_]?key.*",
}

_URL_KEYS = ("url.full", "http.url")
# crossbridge_otel.redaction.MASK, written out: it is used where redaction itself failed (its import included)
_MASK = "***"


class Library:
    """One contrib instrumentation: entry-point name, where its class lives, and what it covers.

    A plain class: a dataclass costs about a millisecond to create, at every start-up (README, Performance).
    """

    __slots__ = ("cls", "module", "name", "nests_under", "used_by")

    def __init__(self, name: str, module: str, cls: str, used_by: str, nests_under: str) -> None:
        self.name = name
        self.module = module
        self.cls = cls
        self.used_by = used_by
        self.nests_under = nests_under

    def __repr__(self) -> str:
        return f"Library({self.name!r})"


LIBRARIES: tuple[Library, ...] = (
    Library("click", "opentelemetry.instrumentation.click", "ClickInstrumentor",
            "plain click commands (CrossBridge's CLIs are argparse and Typer: cli.command is ours)", "roots"),
    Library("requests", "opentelemetry.instrumentation.requests", "RequestsInstrumentor",
            "BitbucketConnector, ProfilingSession", "repo.* / profiling.*"),
    Library("httpx", "opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor", "RemoteSidecarClient",
            "services.sidecar.send"),
    Library("sqlite3", "opentelemetry.instrumentation.sqlite3", "SQLite3Instrumentor", "CoverageRepository",
            "coverage.repository.*"),
    Library("sqlalchemy", "opentelemetry.instrumentation.sqlalchemy", "SQLAlchemyInstrumentor",
            "FunctionalCoverageRepository, persistence.schema", "coverage.functional.*"),
    Library("psycopg2", "opentelemetry.instrumentation.psycopg2", "Psycopg2Instrumentor",
            "PostgresStorageBackend, the hook SDK", "profiling.storage.*"),
    Library("fastapi", "opentelemetry.instrumentation.fastapi", "FastAPIInstrumentor", "the sidecar API",
            "roots (server spans) carrying crossbridge.* attributes"),
    Library("threading", "opentelemetry.instrumentation.threading", "ThreadingInstrumentor",
            "ParallelStrategy, BatchOrchestrator, MigrationOrchestrator pools", "keeps the parent in workers"),
)


def redact(text: str) -> str:
    """:func:`crossbridge_otel.redaction.redact`, imported at first use.

    Not at import: the distro imports this module at every ``opentelemetry-instrument`` start-up, and compiling
    the redaction patterns costs several milliseconds there (README, Performance).
    """
    from crossbridge_otel.redaction import redact as redact_text

    return redact_text(text)


def _redact_url_attributes(span: Span) -> None:
    attributes: Mapping[str, Any] = getattr(span, "attributes", None) or {}
    for key in _URL_KEYS:
        value = attributes.get(key)
        if isinstance(value, str):
            clean = redact(value)
            if clean != value:
                span.set_attribute(key, clean)


def _http_request_hook(span: Span, request: Any) -> None:
    """requests/httpx request hook: credentials in the URL never leave the process."""
    try:
        if span is not None and span.is_recording():
            _redact_url_attributes(span)
    except Exception as exc:
        report_failure("URL redaction hook", exc)


async def _async_http_request_hook(span: Span, request: Any) -> None:
    _http_request_hook(span, request)


def instrument_kwargs(name: str) -> dict[str, Any]:
    """Extra ``instrument()`` keyword arguments this distribution passes to the contrib ``name``."""
    if name == "requests":
        return {"request_hook": _http_request_hook}
    if name == "httpx":
        return {"request_hook": _http_request_hook, "async_request_hook": _async_http_request_hook}
    if name == "psycopg2":  # the sqlite3 instrumentation has no parameter capture at all
        from crossbridge_otel.settings import load as load_settings

        # Fail closed: capture only where the captured values can be redacted (see _redact_sql_spans).
        capture = load_settings(warn=False).capture_sql_parameters and _sql_redaction_possible()
        return {"capture_parameters": capture}
    return {}


_SQL_PARAMETER_KEYS = ("db.statement.parameters",)
_SQL_TEXT_KEYS = ("db.statement", "db.query.text")  # the contrib's old and new database conventions
_TRACED_EXECUTIONS = ("traced_execution", "traced_execution_async")


def _holds_literal(statement: object) -> bool:
    """Whether SQL text can hold a secret: only inside a quoted literal, ``'...'`` or ``$tag$...$tag$``.

    A statement that is not a ``str`` (``bytes``, psycopg2's ``sql.Composed``) may: it is looked at.
    """
    return not isinstance(statement, str) or "'" in statement or "$" in statement


def _redact_sql_attributes(span: Any) -> None:
    attributes: Mapping[str, Any] = getattr(span, "attributes", None) or {}
    for key in _SQL_PARAMETER_KEYS:
        value = attributes.get(key)
        if isinstance(value, str):
            span.set_attribute(key, redact(value))
    for key in _SQL_TEXT_KEYS:
        value = attributes.get(key)
        # A statement without a literal (placeholders) is not scanned: redact() costs tens of microseconds, more
        # than the sqlite3 query it would describe.
        if isinstance(value, str) and _holds_literal(value):
            clean = redact(value)
            if clean != value:
                span.set_attribute(key, clean)


def _redact_current_sql_span() -> None:
    span = get_current_span()
    if not span.is_recording():
        return
    try:
        _redact_sql_attributes(span)
    except Exception as exc:
        attributes: Mapping[str, Any] = getattr(span, "attributes", None) or {}
        for key in _SQL_PARAMETER_KEYS:
            if key in attributes:
                span.set_attribute(key, _MASK)  # fail closed: parameters we could not redact are not exported
        report_failure("SQL redaction", exc)


def _sql_redaction_possible() -> bool:
    try:
        dbapi: Any = importlib.import_module("opentelemetry.instrumentation.dbapi")
    except ImportError:
        return False
    return callable(getattr(getattr(dbapi, "CursorTracer", None), "traced_execution", None))


_sql_users: list[Callable[[], None]] = []  # one entry per instrumentation relying on the patch below


def _redact_sql_spans() -> Callable[[], None]:
    """Redact the DB-API integration's span attributes while its span still records.

    The contrib integration (used by psycopg2 and sqlite3) has no hook: it starts the span, sets ``db.statement``
    (and ``db.statement.parameters`` when capturing), then calls the query method inside the span. That call is
    where we redact, by handing ``CursorTracer.traced_execution`` (a public method) a query method that first
    redacts the current span. After the span ends its attributes are immutable, so this is the last moment.
    The patch is shared by psycopg2 and sqlite3; the last one uninstrumented removes it.
    """
    dbapi: Any = importlib.import_module("opentelemetry.instrumentation.dbapi")
    tracer_cls = dbapi.CursorTracer
    if not _sql_users:
        for name in _TRACED_EXECUTIONS:
            original = getattr(tracer_cls, name, None)
            if original is not None:
                setattr(tracer_cls, name, _redacting(original))

    def restore() -> None:
        _sql_users.remove(restore)
        if not _sql_users:
            for name in _TRACED_EXECUTIONS:
                patched = tracer_cls.__dict__.get(name)
                if patched is not None and hasattr(patched, "__wrapped__"):
                    setattr(tracer_cls, name, patched.__wrapped__)

    _sql_users.append(restore)
    return restore


def _redacting(original: Callable[..., Any]) -> Callable[..., Any]:
    def traced_execution(self: Any, cursor: Any, query_method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # The integration's own capture switch; a private attribute, so when it is not found we assume capture.
        captures = getattr(getattr(self, "_db_api_integration", None), "capture_parameters", True) is not False

        def query(*query_args: Any, **query_kwargs: Any) -> Any:
            # Only a query with something to redact looks at the span (the common statement costs two `in`s).
            if _holds_literal(query_args[0] if query_args else "") or (captures and len(query_args) > 1):
                _redact_current_sql_span()
            return query_method(*query_args, **query_kwargs)  # (a coroutine for the async variant: returned as is)

        return original(self, cursor, query, *args, **kwargs)

    traced_execution.__wrapped__ = original  # type: ignore[attr-defined]
    return traced_execution


_restores: dict[str, Callable[[], None]] = {}


def _trace_sqlite_shortcuts() -> Callable[[], None]:
    """Route sqlite3's ``Connection.execute``/``executemany`` shortcuts through the traced cursor.

    The contrib sqlite3 instrumentation proxies connections and traces cursor queries only, so the shortcut
    CrossBridge's ``CoverageRepository`` uses is invisible (open-telemetry/opentelemetry-python-contrib#3082).
    ``Connection.execute`` is defined as "make a cursor, execute on it, return it": the proxy for sqlite3
    connections does exactly that on a traced cursor, and returns the same sqlite3 cursor.
    """
    import sqlite3

    dbapi: Any = importlib.import_module("opentelemetry.instrumentation.dbapi")
    original = dbapi.get_traced_connection_proxy
    if getattr(original, "__crossbridge_otel__", False):
        return lambda: None

    class SqliteConnectionProxy(dbapi.TracedConnectionProxy):  # type: ignore[misc]
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            return self.cursor().execute(*args, **kwargs)

        def executemany(self, *args: Any, **kwargs: Any) -> Any:
            return self.cursor().executemany(*args, **kwargs)

    def get_traced_connection_proxy(connection: Any, integration: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(connection, sqlite3.Connection):
            return SqliteConnectionProxy(connection, integration)
        return original(connection, integration, *args, **kwargs)

    get_traced_connection_proxy.__crossbridge_otel__ = True  # type: ignore[attr-defined]
    dbapi.get_traced_connection_proxy = get_traced_connection_proxy

    def restore() -> None:
        if dbapi.get_traced_connection_proxy is get_traced_connection_proxy:
            dbapi.get_traced_connection_proxy = original

    return restore


def _sqlite_additions() -> Callable[[], None]:
    restores = [_trace_sqlite_shortcuts(), _redact_sql_spans()]

    def restore() -> None:
        for undo in restores:
            undo()

    return restore


_AFTER_INSTRUMENT: dict[str, Callable[[], Callable[[], None]]] = {
    "sqlite3": _sqlite_additions, "psycopg2": _redact_sql_spans,
}


def after_instrument(name: str) -> None:
    """Our additions to the contrib instrumentation ``name``, right after it instrumented (guarded)."""
    extend = _AFTER_INSTRUMENT.get(name)
    if extend is None or name in _restores:
        return
    try:
        _restores[name] = extend()
    except Exception as exc:
        report_failure(f"extending the {name} instrumentation", exc)


def instrument(names: Iterable[str] | None = None, **providers: Any) -> list[Any]:
    """Instrument the named libraries (all by default) with our configuration; returns the instrumentors.

    A library (or its instrumentation) that is not installed is skipped; ``providers`` are passed on
    (``tracer_provider=``, ``meter_provider=``).
    """
    wanted = set(names) if names is not None else {lib.name for lib in LIBRARIES}
    done = []
    for lib in LIBRARIES:
        if lib.name not in wanted:
            continue
        try:
            instrumentor = getattr(importlib.import_module(lib.module), lib.cls)()
        except ImportError:
            continue
        if instrumentor.is_instrumented_by_opentelemetry:
            continue
        instrumentor.instrument(**{**instrument_kwargs(lib.name), **providers})
        after_instrument(lib.name)
        done.append(instrumentor)
    return done


def uninstrument(instrumentors: Iterable[Any]) -> None:
    """Undo :func:`instrument` for the instrumentors it returned."""
    for instrumentor in instrumentors:
        instrumentor.uninstrument()
        for lib in LIBRARIES:
            if type(instrumentor).__name__ == lib.cls and lib.name in _restores:
                _restores.pop(lib.name)()
