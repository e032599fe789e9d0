"""Throwaway PostgreSQL server for tests (stdlib + psycopg2 only).

Usage::

    from support.pgserver import PostgresServer          # or `import pgserver` with tests/ on sys.path

    with PostgresServer() as pg:                       # initdb + start
        conn = pg.connect()                            # psycopg2 connection to pg.dsn
        pg.stop()                                      # mode="fast"
        pg.start()                                     # same data dir, same port
        pg.kill_backends()                             # pg_terminate_backend() every other client
    # stopped and deleted here

The cluster lives in a fresh ``tempfile.mkdtemp()`` directory, listens on 127.0.0.1 only (a free port),
uses trust auth and puts its unix socket in that directory. When running as root, ``initdb``/``pg_ctl``
run as the ``postgres`` OS user (``runuser -u postgres --`` when available, otherwise setuid in the child),
and the directory is chowned to that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["PostgresServer", "PostgresUnavailable", "find_pg_bin_dir", "free_port", "postgres_available"]


class PostgresUnavailable(RuntimeError):
    """PostgreSQL binaries (initdb/pg_ctl/postgres) or psycopg2 are not available."""


def _version_key(path: str) -> tuple[int, ...]:
    parts = Path(path).parent.name.split(".")
    return tuple(int(p) for p in parts if p.isdigit())


def find_pg_bin_dir() -> Path | None:
    """Directory holding initdb/pg_ctl: newest ``/usr/lib/postgresql/*/bin``, else ``$PG_BIN``/``PATH``."""
    env = os.environ.get("PG_BIN")
    if env and (Path(env) / "initdb").exists():
        return Path(env)
    candidates = [
        d
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists()
    ]
    if candidates:
        return Path(sorted(candidates, key=_version_key)[-1])
    on_path = shutil.which("initdb")
    if on_path:
        real = Path(os.path.realpath(on_path)).parent
        if (real / "pg_ctl").exists():
            return real
    return None


def postgres_available() -> bool:
    """True when the server binaries and psycopg2 are importable/usable."""
    if find_pg_bin_dir() is None:
        return False
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return False
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A private PostgreSQL cluster: ``initdb`` once, then ``start()``/``stop()`` as often as needed."""

    def __init__(
        self,
        port: int | None = None,
        user: str = "postgres",
        dbname: str = "postgres",
        base_dir: str | os.PathLike[str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        bin_dir = find_pg_bin_dir()
        if bin_dir is None:
            raise PostgresUnavailable("PostgreSQL binaries not found (run tests/setup/ensure-postgres.sh)")
        self.bin_dir = bin_dir
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.user = user
        self.dbname = dbname
        self.start_timeout = start_timeout
        self._owns_dir = base_dir is None
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="cb-pg-"))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir
        self.log_file = self.base_dir / "postgres.log"
        self._as_root = os.geteuid() == 0
        self._initialized = False
        self._running = False

    # -- properties -------------------------------------------------------------------------------
    @property
    def dsn(self) -> str:
        """libpq keyword DSN, e.g. ``host=127.0.0.1 port=5xxxx user=postgres dbname=postgres``."""
        return f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def running(self) -> bool:
        return self._running

    def connect_kwargs(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "user": self.user, "dbname": self.dbname}

    # -- process helpers ----------------------------------------------------------------------------
    def _run(self, args: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        kwargs: dict[str, Any] = {
            "capture_output": True,
            "text": True,
            "timeout": timeout,
            "cwd": str(self.base_dir),
            "env": {**os.environ, "LC_ALL": "C", "LANG": "C"},
        }
        if self._as_root:
            runuser = shutil.which("runuser")
            if runuser:
                cmd = [runuser, "-u", "postgres", "--", *cmd]
            else:
                pw = pwd.getpwnam("postgres")
                kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        result = subprocess.run(cmd, **kwargs)
        if result.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}\n{self._log_tail()}"
            )
        return result

    def _log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def _chown(self) -> None:
        if not self._as_root:
            return
        pw = pwd.getpwnam("postgres")
        for root, dirs, files in os.walk(self.base_dir):
            os.chown(root, pw.pw_uid, pw.pw_gid)
            for name in dirs + files:
                os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)

    # -- lifecycle ----------------------------------------------------------------------------------
    def initdb(self) -> None:
        if self._initialized:
            return
        self.base_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base_dir, 0o700)
        self._chown()
        self._run(
            [
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            timeout=120,
        )
        self._initialized = True

    def start(self) -> PostgresServer:
        """Start (``initdb`` first if needed) and wait until connections are accepted."""
        if self._running:
            return self
        self.initdb()
        opts = (
            f"-p {self.port} -c listen_addresses={self.host} -c unix_socket_directories={self.socket_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        self._run(
            [
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                opts,
                "-w",
                "-t",
                str(int(self.start_timeout)),
                "start",
            ],
            timeout=self.start_timeout + 10,
        )
        self._running = True
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import psycopg2

        deadline = time.monotonic() + self.start_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                psycopg2.connect(connect_timeout=2, **self.connect_kwargs()).close()
                return
            except psycopg2.OperationalError as exc:
                last = exc
                time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not accept connections: {last}\n{self._log_tail()}")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m <smart|fast|immediate>``; the data directory is kept for ``start()``."""
        if not self._running:
            return
        self._run(["pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "30", "stop"], timeout=40)
        self._running = False

    def restart(self, mode: str = "fast") -> PostgresServer:
        self.stop(mode)
        return self.start()

    def connect(self, **overrides: Any) -> Any:
        """A new psycopg2 connection (autocommit off, like psycopg2's default)."""
        import psycopg2

        return psycopg2.connect(**{**self.connect_kwargs(), "connect_timeout": 5, **overrides})

    def kill_backends(self, dbname: str | None = None) -> int:
        """Terminate every other client backend (optionally only those on ``dbname``); returns the count."""
        conn = self.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                sql = (
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
                )
                params: tuple[Any, ...] = ()
                if dbname:
                    sql += " AND datname = %s"
                    params = (dbname,)
                cur.execute(sql, params)
                return sum(1 for (ok,) in cur.fetchall() if ok)
        finally:
            conn.close()

    def cleanup(self) -> None:
        """Stop (immediate if fast fails) and delete the temporary directory."""
        try:
            self.stop("fast")
        except Exception:
            try:
                self.stop("immediate")
            except Exception:
                pass
        if self._owns_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"PostgresServer({self.url}, data_dir={self.data_dir}, running={self._running})"
