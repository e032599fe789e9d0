"""Pytest plugin providing a throwaway PostgreSQL server.

The root ``tests/conftest.py`` loads it (``pytest_plugins = ["support.postgres"]``), so every test can ask for
these fixtures by name.

Fixtures:
* ``postgres_server`` (session): a started :class:`pgserver.PostgresServer` (``.dsn``, ``.host``, ``.port``,
  ``.connect()``, ``.stop()``, ``.start()``, ``.kill_backends()``). When PostgreSQL is unavailable the
  test is SKIPPED with the reason, except in CI (``CI`` true, 1, yes, on), where it FAILS instead.
* ``postgres_db`` (function): a fresh database name on that server (dropped afterwards).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from support.crossbridge_target import ci
from support.pgserver import PostgresServer, postgres_available


def _unavailable(reason: str) -> None:
    if ci():
        pytest.fail(f"PostgreSQL required in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason} (run tests/setup/ensure-postgres.sh)")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster private to this test session (127.0.0.1, trust auth)."""
    if not postgres_available():
        _unavailable("initdb/pg_ctl or psycopg2 (or the 'postgres' OS user) not found")
    server = PostgresServer()
    try:
        server.start()
    except Exception as exc:
        server.cleanup()
        _unavailable(f"could not start a cluster: {exc}")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> Iterator[str]:
    """Name of a freshly created database on ``postgres_server`` (dropped after the test)."""
    name = "t_" + uuid.uuid4().hex[:12]
    if not postgres_server.running:
        postgres_server.start()
    conn = postgres_server.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    try:
        yield name
    finally:
        if not postgres_server.running:
            postgres_server.start()
        postgres_server.kill_backends(dbname=name)
        conn = postgres_server.connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.close()


def stored_test_ids(server: PostgresServer, db: str, run_id: str) -> list[str]:
    """The test ids CrossBridge's PostgreSQL profiling backend stored for ``run_id``, sorted."""
    conn = server.connect(dbname=db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT test_id FROM profiling.tests WHERE run_id = %s ORDER BY test_id", (run_id,))
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()
