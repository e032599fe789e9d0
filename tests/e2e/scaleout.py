"""The scale-out topology on 127.0.0.x for tests and measurements: instrumented CrossBridge processes -> one agent
(examples/deploy/agent.yaml) -> two gateways (collector-config.yaml + examples/deploy/gateway.yaml, tail sampling)
-> Jaeger (tests/e2e/jaeger.yaml, Badger on disk).

Builds on tests/e2e/pipeline.py (binaries, free ports, process handling, Jaeger's query API). What it adds:
the agent and gateways, the DNS variant of the agent (a private /etc/hosts in a mount namespace stands in for an
orchestrator's DNS), the collectors' own Prometheus metrics, the workload processes and their facts, and the
tail sampler's probabilistic rule re-done in Python (so each ordinary trace's fate is known in advance).

tests/e2e/scaleout_sizing.py measures CPU per span at each tier with these helpers (examples/deploy/SCALE-OUT.md).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pipeline  # noqa: E402
from support.crossbridge_target import crossbridge_env  # noqa: E402

DEPLOY = pipeline.REPO_ROOT / "examples" / "deploy"
AGENT_CONFIG = DEPLOY / "agent.yaml"
AGENT_DNS_CONFIG = DEPLOY / "agent-dns.yaml"
GATEWAY_CONFIG = DEPLOY / "gateway.yaml"
WORKLOAD = pipeline.E2E_DIR / "scaleout_workload.py"
VENV_BIN = Path(sys.executable).parent
DROPPED = re.compile(r"crossbridge-otel: dropped (\d+) spans and (\d+) log records")
#: The tail sampler's default salt (gateway.yaml's TAIL_SAMPLING_HASH_SALT default).
DEFAULT_SALT = "crossbridge"
#: Every kind but "ok" must always be kept (scaleout_workload.py's docstring says why each is).
ALWAYS_KEPT = frozenset({"error", "retry", "ratelimit", "slow", "child"})


# ------------------------------------------------------------------------------------------ sampling rule
def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def probabilistic_keeps(trace_id: str, percent: float, salt: str = DEFAULT_SALT) -> bool:
    """The tail_sampling `probabilistic` policy's decision (tailsamplingprocessor v0.161.0,
    internal/sampling/probabilistic.go): FNV-1a 64 of salt + the 16 trace-id bytes <= MaxUint64 x ratio."""
    threshold = int(Fraction(2**64 - 1) * Fraction(percent / 100))
    return fnv1a64(salt.encode() + bytes.fromhex(trace_id)) <= threshold


# ------------------------------------------------------------------------------------------ metrics
def prometheus(url: str) -> list[tuple[str, dict[str, str], float]]:
    """Samples of a Prometheus text exposition: (name, labels, value)."""
    status, body = pipeline.http_get(url, timeout=5)
    if status != 200:
        raise pipeline.PipelineError(f"GET {url} -> HTTP {status}")
    samples = []
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
            samples.append((m.group(1), labels, float(m.group(4))))
    return samples


def metric(samples: Iterable[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` (``_total`` optional) whose labels include ``labels``."""
    return sum(
        value
        for n, lab, value in samples
        if n in (name, name + "_total") and all(lab.get(k) == v for k, v in labels.items())
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), for per-span costs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def port_free_on(*hosts: str) -> int:
    """A port that is free on every one of ``hosts`` right now (the DNS resolver uses one port for all)."""
    for _ in range(50):
        port = pipeline.free_port()
        try:
            for host in hosts:
                with socket.socket() as s:
                    s.bind((host, port))
        except OSError:
            continue
        return port
    raise pipeline.PipelineError(f"no port free on all of {hosts}")


# ------------------------------------------------------------------------------------------ collectors
class Gateway(pipeline.Collector):
    """collector-config.yaml + gateway.yaml, OTLP/gRPC on ``grpc_endpoint`` (the agent's target)."""

    def __init__(self, binary: Path | str, workdir: Path, name: str) -> None:
        self.name = name
        super().__init__(binary, pipeline.COLLECTOR_CONFIG, workdir)
        self.grpc_endpoint = ""

    def start_gateway(self, jaeger: pipeline.Jaeger, grpc_endpoint: str, env: Mapping[str, str]) -> Gateway:
        self.grpc_endpoint = grpc_endpoint
        self.start(
            env={"OTELCOL_OTLP_GRPC_ENDPOINT": grpc_endpoint, **env},
            jaeger=jaeger,
            extra_args=[f"--config={GATEWAY_CONFIG}"],
        )
        return self


class Agent(pipeline.Collector):
    """agent.yaml (static resolver), or with agent-dns.yaml and a private /etc/hosts (``hosts_file``): the agent
    runs in its own mount namespace where /etc/hosts is that file, which the test rewrites like an orchestrator's
    DNS (Go re-reads /etc/hosts at most every 5 s)."""

    name = "agent"

    def __init__(self, binary: Path | str, workdir: Path, hosts_file: Path | None = None) -> None:
        self.hosts_file = hosts_file
        if hosts_file is not None:
            wrapper = workdir / "agent-in-mount-ns.sh"
            workdir.mkdir(parents=True, exist_ok=True)
            wrapper.write_text(
                "#!/bin/sh\n# the agent, with SCALEOUT_HOSTS_FILE as its /etc/hosts (a private mount namespace)\n"
                "exec unshare --mount --propagation private sh -c "
                "'mount --bind \"$SCALEOUT_HOSTS_FILE\" /etc/hosts && exec \"$0\" \"$@\"' "
                f"'{binary}' \"$@\"\n"
            )
            wrapper.chmod(0o755)
            binary = wrapper
        super().__init__(binary, AGENT_CONFIG, workdir)

    def start_agent(self, gateways: list[str] | None = None, dns: tuple[str, int] | None = None) -> Agent:
        env: dict[str, str] = {}
        extra: list[str] = []
        if gateways is not None:
            env["GATEWAY_ENDPOINTS"] = "[" + ", ".join(gateways) + "]"
        if dns is not None:
            assert self.hosts_file is not None, "the DNS resolver needs a hosts file"
            env.update(
                GATEWAY_DNS_NAME=dns[0], GATEWAY_DNS_PORT=str(dns[1]), GATEWAY_DNS_INTERVAL="1s",
                SCALEOUT_HOSTS_FILE=str(self.hosts_file),
            )
            extra.append(f"--config={AGENT_DNS_CONFIG}")
        self.start(env=env, extra_args=extra)
        return self

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        return prometheus(self.metrics_url)


def write_hosts(path: Path, name: str, addresses: Iterable[str]) -> None:
    """Rewrite the agent's private /etc/hosts in place (same inode: the bind mount keeps seeing it)."""
    with open(path, "w", encoding="utf-8") as out:
        out.write("127.0.0.1 localhost\n" + "".join(f"{a} {name}\n" for a in addresses))


# ------------------------------------------------------------------------------------------ workload
@dataclass
class WorkloadProcess:
    proc: subprocess.Popen[str]
    facts: Path
    stderr_path: Path
    exited_at: float | None = None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def dropped_spans(self) -> int:
        found = DROPPED.findall(self.stderr())
        return int(found[-1][0]) if found else 0


def start_workloads(
    count: int,
    agent: pipeline.Collector,
    service: str,
    workdir: Path,
    operations: int,
    pace_s: float,
    slow_s: float,
    with_child: bool = True,
) -> list[WorkloadProcess]:
    """``count`` concurrent ``opentelemetry-instrument python scaleout_workload.py run ...`` exporting to ``agent``."""
    environ = {
        **crossbridge_env(),
        "CROSSBRIDGE_OTEL_STRICT": "false",  # production mode: what a user gets
        "CROSSBRIDGE_OTEL_RATE_LIMITS": "translation=1/0.1",  # one token per 100 ms: the 2nd translation waits
        "OTEL_EXPORTER_OTLP_ENDPOINT": agent.otlp_http_url,
        "OTEL_SERVICE_NAME": service,
        "OTEL_LOGS_EXPORTER": "none",  # traces are what the tail sampler decides on
        "OTEL_METRICS_EXPORTER": "none",
    }
    for name in ("TRACEPARENT", "TRACESTATE", "CROSSBRIDGE_OTEL_LOCAL_OUTPUT"):
        environ.pop(name, None)
    workdir.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        facts = workdir / f"facts-{i}.jsonl"
        err = workdir / f"workload-{i}.stderr"
        # one process runs the two-process operation: a child costs seconds of start-up on two shared cores
        child = "1" if with_child and i == 0 else "0"
        args = [str(facts), str(operations), str(pace_s), str(i + 1), str(slow_s), child]
        with open(err, "w") as err_file:
            proc = subprocess.Popen(
                [str(VENV_BIN / "opentelemetry-instrument"), sys.executable, str(WORKLOAD), "run", *args],
                env=environ, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err_file,
                text=True,
            )
        out.append(WorkloadProcess(proc, facts, err))
    return out


def wait_all(processes: list[WorkloadProcess], timeout: float) -> list[int]:
    """Wait for every process, noting when each exited (to 20 ms) for the exit-time check."""
    deadline = time.monotonic() + timeout
    while any(p.exited_at is None for p in processes):
        for p in processes:
            if p.exited_at is None and p.proc.poll() is not None:
                p.exited_at = time.time()
        if time.monotonic() > deadline:
            for p in processes:
                if p.exited_at is None:
                    p.proc.kill()
            raise AssertionError(f"workload processes still running after {timeout}s")
        time.sleep(0.02)
    return [int(p.proc.returncode) for p in processes]


@dataclass
class Facts:
    """What the workload processes made: operations (one trace each) and every span, by trace id."""

    ops: list[dict[str, Any]] = field(default_factory=list)
    spans: dict[str, set[str]] = field(default_factory=dict)
    pids: dict[str, set[int]] = field(default_factory=dict)  # trace id -> the processes that made its spans
    exits: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, paths: Iterable[Path]) -> Facts:
        facts = cls()
        for path in paths:
            for line in path.read_text().splitlines():
                record = json.loads(line)
                if record["type"] == "span":
                    facts.spans.setdefault(record["trace_id"], set()).add(record["span_id"])
                    facts.pids.setdefault(record["trace_id"], set()).add(record["pid"])
                elif record["type"] == "op":
                    facts.ops.append(record)
                elif record["type"] == "exit":
                    facts.exits.append(record)
        return facts

    @property
    def span_count(self) -> int:
        return sum(len(s) for s in self.spans.values())

    def expected_kept(self, op: dict[str, Any], percent: float, slow_ms: float) -> bool:
        return (
            op["kind"] in ALWAYS_KEPT
            or probabilistic_keeps(op["trace_id"], percent)
            # the latency policy compares whole milliseconds: duration.Milliseconds() > threshold_ms
            or int(op["duration_ms"]) > slow_ms
        )


def jaeger_spans(jaeger: pipeline.Jaeger, trace_id: str) -> list[str] | None:
    """The span ids Jaeger holds for a trace (with repeats, if it stored a span twice), or None."""
    found = jaeger.trace(trace_id)
    return None if found is None else [s["spanID"] for s in found["spans"]]


def wait_until(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop_all(processes: Iterable[pipeline._Process | None]) -> None:
    for p in processes:
        if p is not None:
            p.stop()


# ------------------------------------------------------------------------------------------ the tests' sampling
#: What the tests set on the gateways: a 25 % baseline, 400 ms "slow" (the workload's slow operations wait 0.5 s or
#: more, its others take milliseconds), decisions 0.5 s after the root span and at most 5 s after the first span.
PERCENT = 25
SLOW_MS = 400
DECISION_WAIT_S = 5
SAMPLING_ENV = {
    "TAIL_SAMPLING_PERCENT": str(PERCENT),
    "TAIL_SAMPLING_SLOW_MS": str(SLOW_MS),
    "TAIL_SAMPLING_DECISION_WAIT": f"{DECISION_WAIT_S}s",
    "TAIL_SAMPLING_AFTER_ROOT": "500ms",
}


@dataclass
class Outcome:
    """What Jaeger holds for each operation's trace, against what the workload made and the policy decides."""

    facts: Facts
    found: dict[str, list[str] | None]  # trace id -> span ids in Jaeger (None: not there)

    def expected(self, op: dict[str, Any]) -> bool:
        return self.facts.expected_kept(op, PERCENT, SLOW_MS)

    def kept(self, op: dict[str, Any]) -> bool:
        return self.found[op["trace_id"]] is not None

    def complete(self, op: dict[str, Any]) -> bool:
        spans = self.found[op["trace_id"]]
        return spans is not None and set(spans) == self.facts.spans[op["trace_id"]]

    def lost(self) -> list[dict[str, Any]]:
        """Operations that should be in Jaeger, whole, and are not."""
        return [op for op in self.facts.ops if self.expected(op) and not self.complete(op)]

    def figures(self) -> dict[str, Any]:
        """Operations (= traces) made, kept and complete per kind, and spans, for the report."""
        out: dict[str, Any] = {
            "spans_made": self.facts.span_count,
            "spans_stored_twice": sum(len(s) - len(set(s)) for s in self.found.values() if s is not None),
        }
        for kind in sorted({op["kind"] for op in self.facts.ops}):
            ops = [op for op in self.facts.ops if op["kind"] == kind]
            out[kind] = {"made": len(ops), "kept": sum(self.kept(op) for op in ops),
                         "complete": sum(self.complete(op) for op in ops),
                         "expected": sum(self.expected(op) for op in ops)}
        return out

    def summary(self) -> str:
        return "; ".join(f"{kind}: {f}" for kind, f in self.figures().items() if isinstance(f, dict))


def observe(jaeger: pipeline.Jaeger, facts: Facts) -> Outcome:
    return Outcome(facts, {op["trace_id"]: jaeger_spans(jaeger, op["trace_id"]) for op in facts.ops})


def settle(jaeger: pipeline.Jaeger, facts: Facts, timeout: float = 40) -> Outcome:
    """Poll Jaeger until every trace that should be kept is there, or until nothing has changed for longer than
    a decision takes (a lost trace never comes); then wait a little more (a trace kept by mistake would arrive
    by then) and take the final picture."""
    deadline = time.monotonic() + timeout
    outcome = observe(jaeger, facts)
    changed = time.monotonic()
    while outcome.lost() and time.monotonic() < deadline and time.monotonic() - changed < DECISION_WAIT_S + 2:
        time.sleep(0.5)
        latest = observe(jaeger, facts)
        if latest.found != outcome.found:
            changed = time.monotonic()
        outcome = latest
    time.sleep(1.5)
    return observe(jaeger, facts)


def start_jaeger(bins: pipeline.Binaries, workdir: Path) -> pipeline.Jaeger:
    """Jaeger with tests/e2e/jaeger.yaml (Badger) in ``workdir``/jaeger."""
    jaeger = pipeline.Jaeger(bins.jaeger, workdir=workdir / "jaeger")
    jaeger.start(env={"JAEGER_BADGER_DIR": str(workdir / "jaeger" / "badger")})
    jaeger.wait_ready(timeout=60)
    return jaeger


def restart_jaeger(jaeger: pipeline.Jaeger, kill: bool) -> None:
    """Stop Jaeger (SIGTERM, or SIGKILL) and start it again on the same ports and Badger directory."""
    ports = {"otlp_grpc": jaeger.otlp_grpc_port, "otlp_http": jaeger.otlp_http_port,
             "query_http": jaeger.query_http_port, "query_grpc": jaeger.query_grpc_port}
    env = dict(jaeger.env)
    if kill:
        jaeger.kill()
    else:
        jaeger.stop()
    jaeger.start(env=env, ports=ports)
    jaeger.wait_ready(timeout=60)


def report(scenario: str, figures: dict[str, Any]) -> None:
    """The run's figures on one line (shown with ``pytest -s``): what the closing notes quote."""
    print(f"SCALEOUT-FIGURES {scenario} {json.dumps(figures)}")
