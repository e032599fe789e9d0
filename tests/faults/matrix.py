"""The fault matrix: real CrossBridge runs (``workload.py``), each with one fault, plain and instrumented.

A :class:`Row` names the fault in the application (``workload.py``'s ``fault``), at the collector
(:func:`collector`), in the environment, or a signal sent during the exit flush. :func:`run_matrix` runs every
row under ``opentelemetry-instrument`` and every distinct application fault plainly, in parallel processes, and
returns an :class:`Outcome` per row; :func:`table` renders them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.crossbridge_target import crossbridge_env
from support.otlp_sink import OtlpSink

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "workload.py"
INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")
EXPORT_TIMEOUT_S = 1.5  # CROSSBRIDGE_OTEL_EXPORT_TIMEOUT's default, which the rows keep
BUDGET_S = EXPORT_TIMEOUT_S + 0.5
PARALLEL = 2
HANG_S = 45  # a run still going after this is killed (and fails its row: it did not exit)


@dataclass(frozen=True)
class Row:
    """One fault. ``collector``: ok, down, hang, status:<code>, garbage, partial, restart, slow, none."""

    name: str
    fault: str = "none"
    collector: str = "ok"
    signal: int | None = None
    env: tuple[tuple[str, str], ...] = ()


ROWS = (
    Row("no fault"),
    Row("raising root filter (configure_secure_logging)", fault="raising-filter"),
    Row("blocking root handler", fault="blocking-handler"),
    Row("root by dictConfig, logging.disable", fault="dictconfig"),
    Row("collector refuses (nothing listening)", collector="down"),
    Row("collector hangs", collector="hang"),
    Row("collector answers 400", collector="status:400"),
    Row("collector answers 500", collector="status:500"),
    Row("collector answers garbage", collector="garbage"),
    Row("collector partial success", collector="partial"),
    Row("collector killed and restarted", collector="restart"),
    Row("exporter raises", fault="exporter-raises"),
    Row("odd attribute values", fault="odd-attributes"),
    Row("fork during an export", fault="fork", collector="slow"),
    Row("SIGTERM during the exit flush", collector="hang", signal=signal.SIGTERM),
    Row("KeyboardInterrupt during the exit flush", collector="hang", signal=signal.SIGINT),
    Row("unwritable local output file", collector="none",
        env=(("CROSSBRIDGE_OTEL_LOCAL_OUTPUT", "{workdir}/not-a-dir/telemetry.jsonl"),)),
)


@dataclass
class Run:
    """One process: exit code, what it printed, how long its exit took after its last statement."""

    returncode: int
    stdout: str
    stderr: str
    exit_lag: float | None
    workdir: Path

    def result(self) -> str | None:
        found = re.search(r"^RESULT (.*)$", self.stdout, re.MULTILINE)
        return found.group(1) if found else None

    def stats(self) -> list[dict[str, Any]]:
        return [json.loads(m) for m in re.findall(r"^FAULT-STATS (.*)$", self.stdout, re.MULTILINE)]

    def output(self) -> list[str]:
        """stdout without our accounting lines, normalised (times, this run's directory)."""
        ours = ("FAULT-STATS", "END ", "FLUSH-ARMED")
        lines = [line for line in self.stdout.splitlines() if not line.startswith(ours)]
        return [_normalise(line, self.workdir) for line in lines]

    def error_lines(self) -> list[str]:
        return [_normalise(line, self.workdir) for line in self.stderr.splitlines() if line.strip()]

    def crossbridge_log(self) -> list[str]:
        """CrossBridge's own run log (setup_logging's file), normalised; empty when it kept none."""
        lines: list[str] = []
        for path in sorted((self.workdir / "crossbridge-logs").glob("*.log")):
            lines += [_normalise(line, self.workdir) for line in path.read_text().splitlines()]
        return lines


_TIMES = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?|\b\d\d:\d\d:\d\d(?:[.,]\d+)?|run-\d{8}_\d{6}")


def _normalise(line: str, workdir: Path) -> str:
    return _TIMES.sub("<time>", line.replace(str(workdir), "<workdir>"))


@dataclass
class Outcome:
    """A row's instrumented run against the plain run of the same application fault, and the collector's view."""

    row: Row
    plain: Run
    run: Run
    delivered: dict[str, int]
    rejected: int
    corrupt: int
    problems: list[str] = field(default_factory=list)

    def created(self) -> dict[str, int]:
        stats = self.run.stats()
        return {kind: sum(s["created"][kind] for s in stats) for kind in ("spans", "logs")}

    def dropped(self) -> dict[str, int]:
        stats = self.run.stats()
        return {kind: sum(s["dropped"][kind] for s in stats) for kind in ("spans", "logs", "metrics")}

    def attempted_points(self) -> int:
        return sum(s["exported"]["metrics"] + s["dropped"]["metrics"] for s in self.run.stats())

    def our_lines(self) -> list[str]:
        """stderr lines of the instrumented run that the plain run did not print."""
        extra = Counter(self.run.error_lines()) - Counter(self.plain.error_lines())
        return list(extra.elements())


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextlib.contextmanager
def collector(kind: str) -> Iterator[tuple[str | None, OtlpSink | None]]:
    """(endpoint, sink) for a row's collector; ``none``: no OTLP exporters at all."""
    if kind == "none":
        yield None, None
        return
    if kind == "down":
        yield _closed_port(), None
        return
    options: dict[str, Any] = {}
    if kind.startswith("status:"):
        options["status"] = int(kind.split(":")[1])
    elif kind in ("hang", "garbage", "partial"):
        options["mode"] = kind
    elif kind == "slow":
        options["delay"] = 0.5
    with OtlpSink(**options) as sink:
        yield sink.endpoint, sink


def _env(row: Row | None, endpoint: str | None, workdir: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CROSSBRIDGE_OTEL_", "FAULT_"))}
    env = crossbridge_env(base)
    env["PYTHONUNBUFFERED"] = "1"
    if row is None:
        return env
    env.update(
        FAULT_STATS="1",
        CROSSBRIDGE_OTEL_STRICT="false",  # production behaviour: contain, never re-raise
        # Two contrib instrumentations of the test environment that are not what a row tests: SQLAlchemy's, for
        # which opentelemetry-instrument prints a start-up line in every process (it does not support SQLAlchemy
        # 2.1: README, Known limits), and openai-v2's, which imports openai at start-up (3 s here, and 0.7 s more
        # at exit to tear it down) in processes that never call a model.
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="sqlalchemy,openai",
    )
    if endpoint is None:
        env.update(OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none", OTEL_METRICS_EXPORTER="none")
    else:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    for name, value in row.env:
        env[name] = value.format(workdir=workdir)
    return env


def _run(fault: str, row: Row | None, endpoint: str | None, sink: OtlpSink | None) -> Run:
    workdir = Path(tempfile.mkdtemp(prefix="fault-"))
    (workdir / "not-a-dir").write_text("a file where the local output's directory should be\n")
    command = [sys.executable, str(WORKLOAD), fault, str(workdir)]
    if row is not None:
        command.insert(0, str(INSTRUMENT))
    process = subprocess.Popen(command, env=_env(row, endpoint, workdir), cwd=str(workdir), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out: list[str] = []
    err: list[str] = []
    ended: list[float] = []
    signalled: list[int] = []

    def read_stdout() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            out.append(line)
            if line.startswith("PHASE-1-DONE") and row is not None and row.collector == "restart" and sink:
                sink.stop()
                threading.Timer(1.5, sink.start).start()
            if line.startswith("END "):
                ended.append(float(line.split()[1]))
            if line.startswith("FLUSH-ARMED") and row is not None and row.signal is not None and not signalled:
                signalled.append(row.signal)  # during the exit flush (a forked child's flush says it too)
                _send(process, row.signal)

    def read_stderr() -> None:
        assert process.stderr is not None
        err.extend(process.stderr)

    readers = [threading.Thread(target=read_stdout), threading.Thread(target=read_stderr)]
    for reader in readers:
        reader.start()
    try:
        process.wait(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        err.append(f"(the test killed the process: still running {HANG_S} s after it started)\n")
    finally:
        process.kill()
        process.wait()
    exited = time.time()
    for reader in readers:
        reader.join(10)
    lag = exited - ended[0] if ended else None
    return Run(process.returncode, "".join(out), "".join(err), lag, workdir)


def _send(process: subprocess.Popen[str], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)


def _instrumented(row: Row) -> tuple[Run, dict[str, int], int, int]:
    with collector(row.collector) as (endpoint, sink):
        run = _run(row.fault, row, endpoint, sink)
        if sink is None:
            return run, {"spans": 0, "logs": 0, "metrics": 0}, 0, 0
        return run, sink.counts(), sum(sink.rejected.values()), sink.corrupt()


def run_matrix(rows: tuple[Row, ...] = ROWS) -> dict[str, Outcome]:
    """Every row instrumented and every distinct application fault plainly, ``PARALLEL`` processes at a time."""
    faults = sorted({row.fault for row in rows} | {"none"})
    with ThreadPoolExecutor(PARALLEL) as pool:
        plain_runs = {fault: pool.submit(_run, fault, None, None, None) for fault in faults}
        instrumented = {row.name: pool.submit(_instrumented, row) for row in rows}
        outcomes = {}
        for row in rows:
            run, delivered, rejected, corrupt = instrumented[row.name].result()
            # the exporter patch and the signals act only on the instrumented run: compare with the plain job
            plain_fault = row.fault if row.fault != "exporter-raises" else "none"
            outcome = Outcome(row, plain_runs[plain_fault].result(), run, delivered, rejected, corrupt)
            check(outcome)
            outcomes[row.name] = outcome
    return outcomes


def table(outcomes: dict[str, Outcome]) -> str:
    """The matrix as a plain-text table (one line per row)."""
    header = ("fault", "rc plain/ours", "same result", "exit s plain/ours", "flush s", "spans c=d+x", "logs c=d+x",
              "points d/x", "our lines", "verdict")
    lines = [header]
    for outcome in outcomes.values():
        created, dropped, delivered = outcome.created(), outcome.dropped(), outcome.delivered
        lags = [run.exit_lag for run in (outcome.plain, outcome.run)]
        flushes = [s["flush_s"] for s in outcome.run.stats()]
        lines.append((
            outcome.row.name,
            f"{outcome.plain.returncode}/{outcome.run.returncode}",
            "yes" if outcome.plain.output() == outcome.run.output() else "NO",
            "/".join(f"{lag:.2f}" if lag is not None else "-" for lag in lags),
            f"{max(flushes):.2f}" if flushes else "-",
            f"{created['spans']}={delivered['spans']}+{dropped['spans']}",
            f"{created['logs']}={delivered['logs']}+{dropped['logs']}",
            f"{delivered['metrics']}/{dropped['metrics']}",
            str(len(outcome.our_lines())),
            "ok" if not outcome.problems else "FAIL: " + "; ".join(p[:100] for p in outcome.problems),
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    rendered.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(rendered)


def check(outcome: Outcome) -> list[str]:
    """What the row breaks of issue 11's four rules (empty when it holds); also kept on ``outcome.problems``."""
    plain, run, problems = outcome.plain, outcome.run, []
    if run.returncode != plain.returncode:
        problems.append(f"exit code {run.returncode}, plain {plain.returncode}")
    if run.result() is None or run.output() != plain.output():
        problems.append("CrossBridge's output differs from the plain run")
    if run.crossbridge_log() != plain.crossbridge_log():
        problems.append("CrossBridge's run log differs from the plain run")
    if run.exit_lag is None or plain.exit_lag is None or run.exit_lag - plain.exit_lag > BUDGET_S:
        problems.append(f"exit took {run.exit_lag} s after the program's end, the plain run's {plain.exit_lag} s "
                        f"(budget: {BUDGET_S} s more)")
    flushes = [s["flush_s"] for s in run.stats()]
    if flushes and max(flushes) > EXPORT_TIMEOUT_S + 0.1:
        problems.append(f"the exit flush took {max(flushes)} s (export timeout {EXPORT_TIMEOUT_S} s)")
    if not run.stats():
        problems.append("no accounting printed")
    else:
        created, dropped = outcome.created(), outcome.dropped()
        for kind in ("spans", "logs"):
            if created[kind] != outcome.delivered[kind] + dropped[kind]:
                problems.append(f"{kind}: created {created[kind]} != delivered {outcome.delivered[kind]} "
                                f"+ dropped {dropped[kind]}")
        if outcome.delivered["metrics"] + dropped["metrics"] != outcome.attempted_points():
            problems.append(f"metric points: delivered {outcome.delivered['metrics']} + dropped "
                            f"{dropped['metrics']} != {outcome.attempted_points()} recorded for export")
    if len(outcome.our_lines()) > 1:
        problems.append(f"{len(outcome.our_lines())} stderr lines from us: {outcome.our_lines()[:3]}")
    if outcome.corrupt:
        problems.append(f"{outcome.corrupt} corrupt requests at the collector")
    outcome.problems = problems
    return problems
