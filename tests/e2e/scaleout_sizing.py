"""CPU per span at each tier of the scale-out recipe, measured on this machine (examples/deploy/SCALE-OUT.md).

    bash tests/setup/loopback-only.sh .venv/bin/python tests/e2e/scaleout_sizing.py [--requests 1500] [--percent 10]

Starts Jaeger (Badger), two gateways (collector-config.yaml + gateway.yaml) and an agent (agent.yaml) on 127.0.0.1,
then the single-node collector (collector-config.yaml alone) with its own Jaeger, and sends each the same
pre-built OTLP/HTTP requests: 8 traces x 8 spans per request (what one CrossBridge process flushes in about a
second), CrossBridge-shaped spans (area, category, code.function.name, domain attributes, a statement the
redaction scans; 10 % of traces with an ERROR span, 5 % with a `retry` event). Each tier's cost is the CPU time
(user + system, /proc) its process used while the load went through, minus its idle rate, divided by the spans it
handled: the agent all of them, a gateway what it received, Jaeger what the gateways kept. The load generator runs
on the same two cores, so wall-clock rates are not the measure; CPU time per span is.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline  # noqa: E402
import scaleout as so  # noqa: E402

SPANS_PER_TRACE = 8
TRACES_PER_REQUEST = 8
OPERATIONS = [
    ("coverage.parse", "coverage", "testing", "core.coverage.jacoco_parser.JaCoCoXMLParser.parse"),
    ("coverage.repository.save_mapping", "coverage", "persistence", "core.coverage.repository.CoverageRepository.save"),
    ("translation.translate", "translation", "migration", "core.translation.pipeline.TranslationPipeline.translate"),
    ("runtime.retry", "runtime", "general", "core.runtime.retry.retry_with_backoff"),
    ("profiling.storage.write", "profiling", "performance", "core.profiling.storage.PostgresStorageBackend.write"),
]


def build_requests(count: int, seed: int = 7) -> list[bytes]:
    """``count`` serialized ExportTraceServiceRequests of CrossBridge-shaped spans with fresh trace ids."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    rng = random.Random(seed)

    def kv(key: str, value: str | int) -> KeyValue:
        return KeyValue(key=key, value=AnyValue(int_value=value) if isinstance(value, int) else AnyValue(
            string_value=value))

    out = []
    now = time.time_ns()
    for r in range(count):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.extend([
            kv("service.name", "crossbridge"), kv("telemetry.distro.name", "crossbridge-otel"),
            kv("telemetry.distro.version", "0.1.0"), kv("process.pid", 1000 + r % 50),
            kv("service.instance.id", f"{r % 50:08x}-runner"), kv("process.runtime.name", "cpython"),
        ])
        ss = rs.scope_spans.add()
        ss.scope.name = "crossbridge_otel.instrumentors.coverage"
        for t in range(TRACES_PER_REQUEST):
            trace_id = rng.randbytes(16)
            root_id = rng.randbytes(8)
            roll = rng.random()
            start = now + (r * TRACES_PER_REQUEST + t) * 1_000_000
            for s in range(SPANS_PER_TRACE):
                name, area, category, function = OPERATIONS[s % len(OPERATIONS)]
                span = ss.spans.add()
                span.trace_id = trace_id
                span.span_id = root_id if s == 0 else rng.randbytes(8)
                if s:
                    span.parent_span_id = root_id
                span.name = "cli.command" if s == 0 else name
                span.kind = Span.SPAN_KIND_INTERNAL
                span.start_time_unix_nano = start + s * 10_000
                span.end_time_unix_nano = start + (900_000 if s == 0 else s * 10_000 + 50_000)
                span.attributes.extend([
                    kv("crossbridge.area", area), kv("crossbridge.category", category),
                    kv("code.function.name", function), kv("crossbridge.coverage.format", "jacoco"),
                    kv("crossbridge.coverage.classes", 12), kv("db.system.name", "sqlite"),
                    kv("db.query.text", "INSERT INTO coverage_mapping (test_id, class_name) VALUES (?, ?)"),
                ])
                if s == SPANS_PER_TRACE - 1 and roll < 0.10:
                    span.status.code = Status.STATUS_CODE_ERROR
                    span.attributes.append(kv("error.type", "returned_none"))
                if s == SPANS_PER_TRACE - 2 and 0.10 <= roll < 0.15:
                    event = span.events.add()
                    event.name = "retry"
                    event.time_unix_nano = span.start_time_unix_nano + 1000
                    event.attributes.extend([kv("retry.attempt", 1), kv("error.type", "ConnectionError")])
        out.append(req.SerializeToString())
    return out


def send(port: int, requests: list[bytes], threads: int = 2) -> float:
    """POST every request to http://127.0.0.1:<port>/v1/traces on ``threads`` keep-alive connections."""
    chunks = [requests[i::threads] for i in range(threads)]
    errors: list[str] = []

    def worker(chunk: list[bytes]) -> None:
        conn = http.client.HTTPConnection(pipeline.HOST, port, timeout=30)
        for body in chunk:
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                errors.append(f"HTTP {resp.status}")
        conn.close()

    t0 = time.monotonic()
    workers = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise SystemExit(f"{len(errors)} requests failed: {errors[:3]}")
    return time.monotonic() - t0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Meter:
    """CPU seconds of a set of processes between two points, minus each one's idle rate."""

    def __init__(self, procs: dict[str, int]) -> None:
        self.procs = procs
        t0, c0 = time.monotonic(), {n: so.cpu_seconds(p) for n, p in procs.items()}
        time.sleep(2)
        self.idle = {n: (so.cpu_seconds(p) - c0[n]) / (time.monotonic() - t0) for n, p in procs.items()}
        self.t0, self.c0 = time.monotonic(), {n: so.cpu_seconds(p) for n, p in procs.items()}

    def used(self) -> dict[str, float]:
        elapsed = time.monotonic() - self.t0
        return {n: so.cpu_seconds(p) - self.c0[n] - self.idle[n] * elapsed for n, p in self.procs.items()}


def sampling_done(gateways: list[so.Gateway]) -> tuple[float, float] | None:
    """(spans received, spans sent to Jaeger) over the gateways, once every trace is decided and the Jaeger
    exporters have nothing queued or in flight."""
    received = sent = busy = decided = traces = 0.0
    for gw in gateways:
        s = so.prometheus(gw.metrics_url)
        received += so.metric(s, "otelcol_receiver_accepted_spans")
        sent += so.metric(s, "otelcol_exporter_sent_spans", exporter="otlp_grpc/jaeger")
        busy += so.metric(s, "otelcol_exporter_queue_size", exporter="otlp_grpc/jaeger")
        busy += so.metric(s, "otelcol_exporter_in_flight_requests", exporter="otlp_grpc/jaeger")
        decided += so.metric(s, "otelcol_processor_tail_sampling_global_count_traces_sampled")
        traces += so.metric(s, "otelcol_processor_tail_sampling_new_trace_id_received")
    return (received, sent) if traces and decided >= traces and not busy else None


def measure_scaleout(bins: pipeline.Binaries, workdir: Path, requests: list[bytes], percent: float) -> list[str]:
    total = len(requests) * TRACES_PER_REQUEST * SPANS_PER_TRACE
    env = {"TAIL_SAMPLING_PERCENT": str(percent), "TAIL_SAMPLING_AFTER_ROOT": "500ms",
           "TAIL_SAMPLING_DECISION_WAIT": "5s", "OTELCOL_LOG_LEVEL": "warn"}
    procs: list[pipeline._Process] = []
    try:
        jaeger = pipeline.Jaeger(bins.jaeger, workdir=workdir / "jaeger")
        procs.append(jaeger.start(env={"JAEGER_BADGER_DIR": str(workdir / "jaeger" / "badger")}))
        jaeger.wait_ready()
        gateways = [so.Gateway(bins.otelcol, workdir / f"gateway-{n}", f"gateway-{n}") for n in "ab"]
        for gw in gateways:
            procs.append(gw.start_gateway(jaeger, f"{pipeline.HOST}:{pipeline.free_port()}", env))
            gw.wait_ready()
        agent = so.Agent(bins.otelcol, workdir / "agent")
        procs.append(agent.start_agent(gateways=[gw.grpc_endpoint for gw in gateways]))
        agent.wait_ready()
        meter = Meter({"agent": agent.pid, "gateway-a": gateways[0].pid, "gateway-b": gateways[1].pid,
                       "jaeger": jaeger.pid})  # type: ignore[dict-item]
        wall = send(agent.http_port, requests)
        so.wait_until(lambda: so.metric(agent.samples(), "otelcol_exporter_sent_spans") >= total, 120, "agent")
        received, sent = so.wait_until(lambda: sampling_done(gateways), 120, "sampling decisions")
        time.sleep(3)  # Jaeger's batch + Badger write of the last spans
        used = meter.used()
        rows = [
            _row("agent (load_balancing)", total, used["agent"], peak_rss_mb(agent.pid or 0)),
            _row(f"gateway (redaction + tail sampling, {percent:g} % baseline)", received,
                 used["gateway-a"] + used["gateway-b"],
                 max(peak_rss_mb(gw.pid or 0) for gw in gateways)),
            _row("Jaeger ingest (Badger)", sent, used["jaeger"], peak_rss_mb(jaeger.pid or 0)),
        ]
        print(f"# scale-out: {total} spans sent in {wall:.1f}s; gateways kept {sent:.0f} ({sent / received:.0%})")
        return rows
    finally:
        so.stop_all(reversed(procs))


def measure_single_node(bins: pipeline.Binaries, workdir: Path, requests: list[bytes]) -> list[str]:
    total = len(requests) * TRACES_PER_REQUEST * SPANS_PER_TRACE
    procs: list[pipeline._Process] = []
    try:
        jaeger = pipeline.Jaeger(bins.jaeger, workdir=workdir / "jaeger-1")
        procs.append(jaeger.start(env={"JAEGER_BADGER_DIR": str(workdir / "jaeger-1" / "badger")}))
        jaeger.wait_ready()
        collector = pipeline.Collector(bins.otelcol, workdir=workdir / "single")
        procs.append(collector.start(jaeger=jaeger, env={"OTELCOL_LOG_LEVEL": "warn"}))
        collector.wait_ready()
        meter = Meter({"collector": collector.pid, "jaeger": jaeger.pid})  # type: ignore[dict-item]
        send(collector.http_port, requests)

        def delivered() -> bool:
            s = so.prometheus(collector.metrics_url)
            return so.metric(s, "otelcol_exporter_sent_spans", exporter="otlp_grpc/jaeger") >= total

        so.wait_until(delivered, 120, "single-node delivery")
        time.sleep(3)
        used = meter.used()
        return [_row("single-node collector (collector-config.yaml, + file copy)", total, used["collector"],
                     peak_rss_mb(collector.pid or 0))]
    finally:
        so.stop_all(reversed(procs))


def _row(tier: str, spans: float, cpu_s: float, rss_mb: float) -> str:
    us = cpu_s / spans * 1e6
    return f"| {tier} | {spans:.0f} | {cpu_s:.2f} | {us:.1f} | {1e6 / us:,.0f} | {rss_mb:.0f} |"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500, help="OTLP requests of 64 spans (default 1500)")
    parser.add_argument("--percent", type=float, default=10, help="TAIL_SAMPLING_PERCENT (default 10)")
    args = parser.parse_args(argv)
    bins = pipeline.find_binaries(build=False)
    workdir = Path(tempfile.mkdtemp(prefix="scaleout-sizing-"))
    try:
        requests = build_requests(args.requests)
        rows = measure_scaleout(bins, workdir, requests, args.percent)
        rows += measure_single_node(bins, workdir, build_requests(args.requests, seed=8))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"# {os.cpu_count()} cores; {TRACES_PER_REQUEST} traces x {SPANS_PER_TRACE} spans per request")
    print("| tier | spans handled | CPU s | CPU µs per span | spans/s per core | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
