"""Faults injected into a real PostgreSQL session at a chosen moment of a transaction (claims tests only).

- :func:`install_stall_triggers`: triggers on ``profiling.tests`` that stall on the row whose ``test_id`` is
  :data:`VICTIM` while ``profiling.fault`` is armed: ``insert`` stalls the INSERT (before commit), ``commit`` stalls
  a deferred constraint trigger, which runs inside ``COMMIT``. The stall is a wait for an advisory lock the
  :class:`Killer` holds: it lasts exactly until the killer acts (no ``pg_sleep`` of a guessed length).
- :class:`Killer`: holds that lock from its creation; from that connection, waits for a backend stalled on it,
  disarms the fault (so the retried attempt does not stall) and kills that backend with ``pg_terminate_backend``.
- :class:`CommitCutter`: a TCP proxy in front of the server that forwards ``COMMIT``, waits for the server's answer
  (the transaction is committed) and cuts the connection instead of delivering it: a failure *after* commit.
"""

from __future__ import annotations

import socket
import threading
import time

VICTIM = "victim"
STALL_LOCK = 712_001  # the advisory lock key the stalled statement waits for

_TRIGGERS = f"""
CREATE TABLE IF NOT EXISTS profiling.fault (armed text);
CREATE OR REPLACE FUNCTION profiling.stall_insert() RETURNS trigger AS $$
BEGIN
  IF NEW.test_id = '{VICTIM}' AND EXISTS (SELECT 1 FROM profiling.fault WHERE armed = 'insert') THEN
    PERFORM pg_advisory_xact_lock({STALL_LOCK});
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION profiling.stall_commit() RETURNS trigger AS $$
BEGIN
  IF NEW.test_id = '{VICTIM}' AND EXISTS (SELECT 1 FROM profiling.fault WHERE armed = 'commit') THEN
    PERFORM pg_advisory_xact_lock({STALL_LOCK});
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER stall_insert BEFORE INSERT ON profiling.tests FOR EACH ROW EXECUTE FUNCTION profiling.stall_insert();
CREATE CONSTRAINT TRIGGER stall_commit AFTER INSERT ON profiling.tests DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION profiling.stall_commit();
"""


def _admin(server, db: str):
    conn = server.connect(dbname=db)
    conn.autocommit = True
    return conn


def install_stall_triggers(server, db: str, armed: str) -> None:
    """Create the stall triggers (after CrossBridge created its schema) and arm ``insert`` or ``commit``."""
    conn = _admin(server, db)
    try:
        with conn.cursor() as cur:
            cur.execute(_TRIGGERS)
            cur.execute("INSERT INTO profiling.fault VALUES (%s)", (armed,))
    finally:
        conn.close()


class Killer(threading.Thread):
    """Kills the first backend of ``db`` found stalled on :data:`STALL_LOCK` (disarming the fault first).

    The lock is taken here, before the test starts the write. ``hang_guard`` only bounds a stall that never comes:
    the killer then lets go of the lock, the write goes on, and the test's ``killed`` assertion fails.
    """

    def __init__(self, server, db: str, hang_guard: float = 60.0) -> None:
        super().__init__(name="pg-killer", daemon=True)
        self.server, self.db, self.hang_guard = server, db, hang_guard
        self.killed: list[int] = []
        self.query: str | None = None
        self._conn = _admin(server, db)
        with self._conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (STALL_LOCK,))

    def run(self) -> None:
        conn = self._conn
        deadline = time.monotonic() + self.hang_guard
        try:
            with conn.cursor() as cur:
                while time.monotonic() < deadline and not self.killed:
                    # readiness: the backend is waiting for our lock (PostgreSQL has no event to await for that)
                    cur.execute("SELECT a.pid, a.query FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid"
                                " WHERE a.datname = %s AND l.locktype = 'advisory' AND NOT l.granted"
                                " AND l.objid = %s AND a.pid <> pg_backend_pid()", (self.db, STALL_LOCK))
                    row = cur.fetchone()
                    if row is None:
                        time.sleep(0.01)
                        continue
                    cur.execute("DELETE FROM profiling.fault")
                    cur.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                    self.killed.append(row[0])
                    self.query = row[1]
        finally:
            conn.close()


class CommitCutter:
    """A 127.0.0.1 proxy to the server; once :meth:`arm`-ed, the next COMMIT's answer is never delivered."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.armed = False
        self.cut = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, name="commit-cutter", daemon=True).start()

    def arm(self) -> None:
        self.armed = True

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            state = {"cut_next_reply": False}
            threading.Thread(target=self._upstream, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client, state), daemon=True).start()

    def _upstream(self, client: socket.socket, server: socket.socket, state: dict) -> None:
        try:
            while data := client.recv(65536):
                if self.armed and b"COMMIT\x00" in data:
                    self.armed = False
                    state["cut_next_reply"] = True  # set before the server can possibly answer
                server.sendall(data)
        except OSError:
            pass
        finally:
            _shut(server)

    def _downstream(self, server: socket.socket, client: socket.socket, state: dict) -> None:
        try:
            while data := server.recv(65536):
                if state["cut_next_reply"]:
                    self.cut += 1  # the server has committed and answered: the answer is lost
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            _shut(client)
            _shut(server)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
