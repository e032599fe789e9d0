"""Run the real pipeline (OpenTelemetry Collector + Jaeger v2) from tests.

Standard library only, and nothing from the crossbridge_otel package, so it can drive any test (or be used
from a shell: ``python tests/e2e/pipeline.py`` prints the binary paths, building them if needed).

Typical use::

    bins = find_binaries()  # builds once via build-pipeline.sh, then reused from the cache
    with Jaeger(bins.jaeger, workdir=tmp) as jaeger, Collector(bins.otelcol, workdir=tmp) as col:
        jaeger.start(); jaeger.wait_ready()
        col.start(jaeger=jaeger); col.wait_ready()
        ... send OTLP to col.otlp_grpc_endpoint / col.otlp_http_url ...
        trace = jaeger.wait_for_traces("svc")[0]

Every server binds 127.0.0.1 on ports picked by :func:`free_port`. Process output goes to ``<name>.log`` in
the work directory; :meth:`_Process.log_text` returns it and readiness failures include its tail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent.parent
BUILD_SCRIPT = E2E_DIR / "build-pipeline.sh"
COLLECTOR_CONFIG = REPO_ROOT / "collector-config.yaml"
JAEGER_CONFIG = E2E_DIR / "jaeger.yaml"
HOST = "127.0.0.1"

#: Exit code of build-pipeline.sh when the Go toolchain is missing.
EXIT_GO_MISSING = 3
#: Exit code of ``build-pipeline.sh --check`` when nothing is built yet.
EXIT_NOT_BUILT = 4


class PipelineError(RuntimeError):
    """A pipeline binary could not be built, started or queried."""


class GoMissingError(PipelineError):
    """The Go toolchain is not installed, so the collector and Jaeger cannot be built."""


@dataclass(frozen=True)
class Binaries:
    otelcol: Path
    jaeger: Path


def go_available() -> bool:
    return shutil.which("go") is not None


def _parse_paths(output: str) -> Binaries | None:
    found: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key in ("OTELCOL", "JAEGER"):
            found[key] = value
    if "OTELCOL" in found and "JAEGER" in found:
        return Binaries(Path(found["OTELCOL"]), Path(found["JAEGER"]))
    return None


def find_binaries(build: bool = True, timeout: float = 3600, log_path: Path | None = None) -> Binaries:
    """Return the paths of the collector and Jaeger binaries.

    Order: env ``CROSSBRIDGE_OTELCOL_BIN`` + ``CROSSBRIDGE_JAEGER_BIN`` (both must exist), then the build
    cache (``build-pipeline.sh --check``), then, if ``build``, a build with ``build-pipeline.sh`` (cold:
    several minutes; its output goes to ``log_path`` if given). Raises :class:`GoMissingError` when Go is
    missing and a build is needed, :class:`PipelineError` for any other failure.
    """
    env_otel, env_jaeger = os.environ.get("CROSSBRIDGE_OTELCOL_BIN"), os.environ.get("CROSSBRIDGE_JAEGER_BIN")
    if env_otel and env_jaeger:
        bins = Binaries(Path(env_otel), Path(env_jaeger))
        for p in (bins.otelcol, bins.jaeger):
            if not (p.is_file() and os.access(p, os.X_OK)):
                raise PipelineError(f"{p} (from CROSSBRIDGE_*_BIN) is not an executable file")
        return bins

    check = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--check"], capture_output=True, text=True, timeout=120, check=False
    )
    if check.returncode == 0 and (bins := _parse_paths(check.stdout)):
        return bins
    if not build:
        raise PipelineError(f"pipeline binaries are not built; run {BUILD_SCRIPT}\n{check.stderr.strip()}")
    if not go_available():
        raise GoMissingError(
            "Go toolchain not found: the real collector and Jaeger cannot be built; "
            "install Go >= 1.22 (https://go.dev/dl/; the build uses Go 1.26, fetched automatically) and run "
            "tests/e2e/build-pipeline.sh"
        )

    with tempfile.TemporaryFile(mode="w+") as tmp:
        out = open(log_path, "w+") if log_path else tmp  # noqa: SIM115
        try:
            try:
                proc = subprocess.run(
                    ["bash", str(BUILD_SCRIPT)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise PipelineError(f"build-pipeline.sh did not finish within {timeout:.0f}s") from exc
            out.seek(0)
            output = out.read()
        finally:
            if out is not tmp:
                out.close()
    if proc.returncode == EXIT_GO_MISSING:
        raise GoMissingError(output.strip())
    bins = _parse_paths(output)
    if proc.returncode != 0 or bins is None:
        raise PipelineError(f"build-pipeline.sh failed (rc {proc.returncode}); last output:\n{output[-6000:]}")
    return bins


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it; the race window is tiny)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    """GET ``url``; returns (status, body). Connection errors raise OSError (URLError is one)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback only)
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def validate(
    binary: Path | str, config: Path | str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> tuple[int, str]:
    """Run ``<binary> validate --config <config>``; return (returncode, stdout+stderr)."""
    proc = subprocess.run(
        [str(binary), "validate", f"--config={config}"],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


class _Process:
    """A server process with its output in ``<workdir>/<name>.log``."""

    name = "process"

    def __init__(self, binary: Path | str, config: Path | str, workdir: Path | str | None = None) -> None:
        self.binary = Path(binary)
        self.config = Path(config)
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"e2e-{self.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}

    # -- lifecycle -------------------------------------------------------------------------------------------
    def _start(self, env: Mapping[str, str], extra_args: list[str]) -> None:
        if self.running:
            raise PipelineError(f"{self.name} is already running (pid {self.proc.pid})")  # type: ignore[union-attr]
        self.env = dict(env)
        cmd = [str(self.binary), f"--config={self.config}", *extra_args]
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(cmd)}\n# env: {json.dumps(self.env, sort_keys=True)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM (graceful shutdown: queues are drained, files flushed), SIGKILL after ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL: no shutdown at all (for "the collector dies mid-run" tests)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        return self.proc.returncode

    def __enter__(self) -> _Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- diagnostics -----------------------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self, tail: int = 8000) -> str:
        state = "running" if self.running else f"exited rc={self.proc.returncode if self.proc else None}"
        return f"--- {self.name} ({state}), log {self.log_path} ---\n{self.log_text()[-tail:]}"

    def _wait_http_200(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no attempt"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise PipelineError(f"{self.name} exited before becoming ready\n{self.describe()}")
            try:
                status, body = http_get(url, timeout=2)
                if status == 200:
                    return
                last = f"HTTP {status}: {body[:200]!r}"
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise PipelineError(f"{self.name} not ready after {timeout}s ({url}: {last})\n{self.describe()}")


class Jaeger(_Process):
    """Jaeger v2 keeping traces in Badger under its working directory (tests/e2e/jaeger.yaml; jaeger-memory.yaml
    for the in-memory store) on free 127.0.0.1 ports."""

    name = "jaeger"

    def __init__(
        self, binary: Path | str, config: Path | str = JAEGER_CONFIG, workdir: Path | str | None = None
    ) -> None:
        super().__init__(binary, config, workdir)
        self.otlp_grpc_port = self.otlp_http_port = self.query_http_port = self.query_grpc_port = 0

    def start(self, env: Mapping[str, str] | None = None, ports: Mapping[str, int] | None = None) -> Jaeger:
        """Start Jaeger. ``ports`` may fix any of otlp_grpc, otlp_http, query_http, query_grpc (else free)."""
        ports = dict(ports or {})
        self.otlp_grpc_port = ports.get("otlp_grpc") or free_port()
        self.otlp_http_port = ports.get("otlp_http") or free_port()
        self.query_http_port = ports.get("query_http") or free_port()
        self.query_grpc_port = ports.get("query_grpc") or free_port()
        self._start(
            {
                "JAEGER_OTLP_GRPC_PORT": str(self.otlp_grpc_port),
                "JAEGER_OTLP_HTTP_PORT": str(self.otlp_http_port),
                "JAEGER_QUERY_HTTP_PORT": str(self.query_http_port),
                "JAEGER_QUERY_GRPC_PORT": str(self.query_grpc_port),
                **(env or {}),
            },
            [],
        )
        return self

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"{HOST}:{self.otlp_grpc_port}"

    @property
    def query_url(self) -> str:
        return f"http://{HOST}:{self.query_http_port}"

    def wait_ready(self, timeout: float = 60) -> Jaeger:
        self._wait_http_200(f"{self.query_url}/api/services", timeout)
        return self

    # -- query API ---------------------------------------------------------------------------------------
    def _get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        url = f"{self.query_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        status, body = http_get(url, timeout=10)
        if status == 404:
            return None
        if status != 200:
            raise PipelineError(f"GET {url} -> HTTP {status}: {body[:500]!r}")
        return json.loads(body)

    def services(self) -> list[str]:
        return list((self._get_json("/api/services") or {}).get("data") or [])

    def traces(self, service: str, **params: Any) -> list[dict[str, Any]]:
        """``GET /api/traces?service=...`` (Jaeger JSON: spans with tags/logs, processes). Extra query params
        (operation, tags, limit, start, end, ...) are passed through; ``tags`` may be a dict."""
        if isinstance(params.get("tags"), dict):
            params["tags"] = json.dumps(params["tags"])
        params.setdefault("limit", 100)
        return list((self._get_json("/api/traces", {"service": service, **params}) or {}).get("data") or [])

    def trace(self, trace_id: str | int) -> dict[str, Any] | None:
        """``GET /api/traces/{id}`` (32 hex chars or the int id); None if not found."""
        tid = f"{trace_id:032x}" if isinstance(trace_id, int) else trace_id
        data = (self._get_json(f"/api/traces/{tid}") or {}).get("data") or []
        return data[0] if data else None

    def trace_otlp(self, trace_id: str | int) -> dict[str, Any] | None:
        """api_v3 ``GET /api/v3/traces/{id}``: the trace as OTLP JSON (``resourceSpans``), or None."""
        tid = f"{trace_id:032x}" if isinstance(trace_id, int) else trace_id
        doc = self._get_json(f"/api/v3/traces/{tid}")
        return (doc or {}).get("result") if doc else None

    def wait_for_traces(
        self,
        service: str,
        predicate: Callable[[list[dict[str, Any]]], bool] | None = None,
        timeout: float = 30,
        **params: Any,
    ) -> list[dict[str, Any]]:
        """Poll :meth:`traces` until it is non-empty (and ``predicate(traces)`` holds)."""
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            found = self.traces(service, **params)
            if found and (predicate is None or predicate(found)):
                return found
            time.sleep(0.3)
        raise PipelineError(
            f"no matching trace for service {service!r} in Jaeger after {timeout}s "
            f"(last: {json.dumps(found)[:2000]})\n{self.describe()}"
        )


class Collector(_Process):
    """The OpenTelemetry Collector running a config (default: the repository's collector-config.yaml) with
    every endpoint moved to a free 127.0.0.1 port through the config's ``${env:...}`` variables."""

    name = "otelcol"

    def __init__(
        self, binary: Path | str, config: Path | str = COLLECTOR_CONFIG, workdir: Path | str | None = None
    ) -> None:
        super().__init__(binary, config, workdir)
        self.grpc_port = self.http_port = self.health_port = self.metrics_port = 0
        self.file_path = self.workdir / "telemetry.jsonl"

    def config_env(
        self,
        jaeger: Jaeger | str | None = None,
        ports: Mapping[str, int] | None = None,
        backend: str | None = None,
    ) -> dict[str, str]:
        """The environment variables collector-config.yaml reads, on free ports (picked once per instance).

        ``jaeger``: a :class:`Jaeger` or a ``host:port``; default a free port where nothing listens.
        ``backend``: the OTLP/HTTP base URL for logs and metrics; default a dead local port (the config
        must cope with it).
        """
        ports = dict(ports or {})
        self.grpc_port = ports.get("grpc") or self.grpc_port or free_port()
        self.http_port = ports.get("http") or self.http_port or free_port()
        self.health_port = ports.get("health") or self.health_port or free_port()
        self.metrics_port = ports.get("metrics") or self.metrics_port or free_port()
        if isinstance(jaeger, Jaeger):
            jaeger_ep = jaeger.otlp_grpc_endpoint
        else:
            jaeger_ep = jaeger or f"{HOST}:{free_port()}"
        backend = backend or f"http://{HOST}:{free_port()}"
        return {
            "OTELCOL_OTLP_GRPC_ENDPOINT": f"{HOST}:{self.grpc_port}",
            "OTELCOL_OTLP_HTTP_ENDPOINT": f"{HOST}:{self.http_port}",
            "OTELCOL_HEALTH_ENDPOINT": f"{HOST}:{self.health_port}",
            "OTELCOL_METRICS_HOST": HOST,
            "OTELCOL_METRICS_PORT": str(self.metrics_port),
            "JAEGER_OTLP_GRPC_ENDPOINT": jaeger_ep,
            "JAEGER_OTLP_INSECURE": "true",
            "LOGS_OTLP_HTTP_ENDPOINT": backend,
            "METRICS_OTLP_HTTP_ENDPOINT": backend,
            "OTELCOL_FILE_EXPORT_PATH": str(self.file_path),
        }

    def start(
        self,
        env: Mapping[str, str] | None = None,
        ports: Mapping[str, int] | None = None,
        jaeger: Jaeger | str | None = None,
        backend: str | None = None,
        extra_args: list[str] | None = None,
    ) -> Collector:
        """Start the collector with :meth:`config_env` plus ``env`` (which wins)."""
        self._start({**self.config_env(jaeger, ports, backend), **(env or {})}, list(extra_args or []))
        return self

    @property
    def otlp_grpc_endpoint(self) -> str:
        """For the Python SDK's gRPC exporter (``insecure=True``)."""
        return f"{HOST}:{self.grpc_port}"

    @property
    def otlp_http_url(self) -> str:
        """Base URL for OTLP/HTTP (``/v1/traces`` etc. appended), e.g. for OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f"http://{HOST}:{self.http_port}"

    @property
    def health_url(self) -> str:
        return f"http://{HOST}:{self.health_port}/"

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}/metrics"

    def wait_ready(self, timeout: float = 60) -> Collector:
        self._wait_http_200(self.health_url, timeout)
        return self

    def validate(self, config_path: Path | str | None = None, env: Mapping[str, str] | None = None) -> tuple[int, str]:
        """``otelcol validate --config`` on ``config_path`` (default: this collector's config)."""
        return validate(self.binary, config_path or self.config, {**self.config_env(), **(env or {})})

    def file_records(self) -> list[dict[str, Any]]:
        """The file exporter's output: one OTLP JSON export request per line."""
        if not self.file_path.exists():
            return []
        out = []
        for line in self.file_path.read_text().splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out


def main() -> int:
    try:
        bins = find_binaries()
    except PipelineError as exc:
        print(exc, file=sys.stderr)
        return EXIT_GO_MISSING if isinstance(exc, GoMissingError) else 1
    print(f"OTELCOL={bins.otelcol}\nJAEGER={bins.jaeger}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
