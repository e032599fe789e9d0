"""Export throughput: ours vs the stock BatchSpanProcessor + OTLPSpanExporter (OTLP/HTTP), same spans, same receiver.

    bash tests/setup/loopback-only.sh .venv/bin/python tests/benchmarks/bench_export.py [--rounds N] [--seconds S]

The receiver is a minimal HTTP/1.1 server on 127.0.0.1 in this process: it reads each request body, keeps it and
answers 200 without decoding (so it is never the bottleneck); spans are counted from the kept bodies after each
run. Every case runs in a fresh producer subprocess (this file with ``--producer``):

- ours: ``.venv/bin/opentelemetry-instrument python bench_export.py --producer ours`` with
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` at the receiver (logs and metrics exporters off), the global tracer;
- stock: plain ``python`` building ``TracerProvider`` + ``BatchSpanProcessor(OTLPSpanExporter(...))`` with the
  SDK's defaults.

Each producer makes root spans with three attributes (str, int, float) on its main thread:

- full speed for ``--seconds``: spans delivered per CPU-second of the whole process (both threads, from
  ``time.process_time``; the production window and the flush after it), created, delivered, dropped (created -
  delivered at the receiver, and our queue's own count), and peak RSS (``ru_maxrss``) with the queue full;
- paced at 1,000 spans/s for ``--seconds``: CPU per delivered span.

CPU per delivered span at the paced rate, for both sides:

- the export path, judged (<= 0.5x): everything after ``span.end()``, i.e. ``on_end`` on the producing thread (CPU
  time of the SDK's multi-processor ``on_end``, every 7th call timed, less the clock's own cost) plus every thread
  other than the producing one (their CPU-time clocks: export workers, and any idle thread that polls). Judged on
  this because it is the pipeline's own work and free of the two processes' different baselines;
- the export path by difference, reported: the whole process's CPU less its floor, i.e. the same producer in the
  same kind of process (ours under ``opentelemetry-instrument`` with ``OTEL_TRACES_EXPORTER=none``; stock with no
  span processor) run paced in the same round. It also holds what a queue costs the producing thread outside
  ``on_end`` (the garbage collector walking queued span objects, colder caches), but it is a small difference of
  two large, noisy figures;
- the whole process (``time.process_time``), reported. Its producing thread runs the same SDK span code on both
  sides and dominates at 1,000/s: each 10-span step of the paced loop sleeps, and after a sleep the span code runs
  with cold caches (~2-3x its cost in a tight loop); the loop alone (no span) is printed too. Ours also runs under
  ``opentelemetry-instrument`` (stock is a plain ``python``): its baseline (RSS before the window, other threads)
  is printed separately, and its threads, if any, count in our export path.

Cases are interleaved round by round (ours, stock, stock, ours, ...) and medians with min-max printed. Then one
profiled run of each (``--profile``): cProfile with a per-thread CPU timer on the export thread and on the
producing thread, aggregated into encoding, HTTP, copying/relabelling, locks, SDK span work, and the top
functions by own time.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
VENV_BIN = Path(sys.executable).parent
ATTRIBUTES = {"bench.text": "checkout-service/login", "bench.count": 42, "bench.ratio": 0.75}


# -- receiver ---------------------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.bodies.append((self.path, body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class Receiver:
    """Reads and keeps request bodies, answers 200; spans are decoded only when counted."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.bodies = []  # type: ignore[attr-defined]
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self) -> tuple[int, int, int]:
        """(spans, requests, bytes) received since the last call."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        bodies, self.server.bodies = self.server.bodies, []  # type: ignore[attr-defined]
        spans = 0
        for path, body in bodies:
            if path.endswith("/v1/traces"):
                request = ExportTraceServiceRequest.FromString(body)
                spans += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        return spans, len(bodies), sum(len(b) for _, b in bodies)

    def close(self) -> None:
        self.server.shutdown()


# -- producer (runs in the subprocess) -----------------------------------------------------------------------------

def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class _ThreadProfiles:
    """cProfile on every thread started from now on, with a per-thread CPU timer (idle waits cost nothing)."""

    def __init__(self) -> None:
        import cProfile

        self.profiles: dict[str, Any] = {}
        self._cprofile = cProfile

        def start(frame: Any, event: str, arg: Any) -> None:
            sys.setprofile(None)
            profile = cProfile.Profile(time.thread_time)
            self.profiles[threading.current_thread().name] = profile
            profile.enable()

        threading.setprofile(start)
        self.main = cProfile.Profile(time.thread_time)

    def reset(self) -> None:
        for profile in self.profiles.values():
            profile.clear()

    def stats(self) -> dict[str, Any]:
        found = {}
        self.main.disable()
        for name, profile in {"producer (main thread)": self.main, **self.profiles}.items():
            profile.snapshot_stats()  # (not create_stats: that would disable the calling thread's profiler)
            if profile.stats:
                found[name] = profile.stats
        return found


MAIN = "producer (main thread)"


def _threads_cpu() -> dict[str, float]:
    """CPU seconds of each live thread, from its CPU-time clock (nanosecond resolution, no profiler involved)."""
    found = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            seconds = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except OSError:  # the thread ended meanwhile
            continue
        found[MAIN if thread is threading.main_thread() else thread.name] = seconds
    return found


class _OnEndClock:
    """CPU time spent in span processors' ``on_end`` on the producing thread (both sides: the SDK's multi-processor).

    Every 7th call is timed with the thread's CPU-time clock (time spent waiting for the GIL or descheduled is not
    counted); a read of that clock costs ~1-2 us here (a system call), so each timed call is followed by one more
    read and the cost of one read is taken off in place. The sampled mean times all calls is the figure; the
    clock reads add ~0.5 us per span on both sides (in the whole-process figures too). 7 is prime to the paced
    loop's 10 spans per step: every position after a sleep is sampled equally (the first, with cold caches, too).
    """

    EVERY = 7

    def __init__(self) -> None:
        from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor

        self.calls = self.sampled = self.total_ns = 0
        clock = time.thread_time_ns
        original = SynchronousMultiSpanProcessor.on_end
        measure = self
        every = self.EVERY

        def on_end(processor: Any, span: Any) -> None:
            measure.calls += 1
            if measure.calls % every:
                original(processor, span)
                return
            before = clock()
            original(processor, span)
            after = clock()
            measure.total_ns += (after - before) - (clock() - after)
            measure.sampled += 1

        SynchronousMultiSpanProcessor.on_end = on_end  # type: ignore[method-assign]

    def reset(self) -> None:
        self.calls = self.sampled = self.total_ns = 0

    def seconds(self) -> float:
        return max(0.0, self.total_ns / max(1, self.sampled)) * self.calls / 1e9


def _paced_loop_floor(rate: int, seconds: float) -> float:
    """CPU seconds per iteration of the paced loop with no span in it (its sleeps and wake-ups alone)."""
    cpu0 = time.thread_time()
    wall0 = time.perf_counter()
    interval, next_at, count = 10 / rate, wall0, 0
    while next_at < wall0 + seconds:
        count += 10
        next_at += interval
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    return (time.thread_time() - cpu0) / max(1, count)


def _pipeline_counts() -> dict[str, Any]:
    from opentelemetry import trace

    owner = getattr(trace.get_tracer_provider(), "_owner", None)
    pipeline = getattr(owner, "built", None) if owner is not None else None  # a property: never builds
    if pipeline is None:
        return {}
    queues = getattr(pipeline, "span_queues", [])
    return {"dropped": pipeline.dropped().get("spans"), "reasons": [getattr(q, "drop_reasons", {}) for q in queues],
            "max_queue": [getattr(q, "_max_queue", None) for q in queues]}


def produce(kind: str, mode: str, seconds: float, rate: int, profile: bool) -> dict[str, Any]:
    from opentelemetry import trace

    profiles = _ThreadProfiles() if profile else None
    on_end_clock = _OnEndClock()
    if kind == "stock":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider: Any = TracerProvider()
        if mode != "floor":  # the floor: the same spans with nothing exporting them
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        tracer = provider.get_tracer("bench")
    else:
        provider = trace.get_tracer_provider()
        tracer = trace.get_tracer("bench")
    with tracer.start_as_current_span("warm-up", attributes=ATTRIBUTES):
        pass
    provider.force_flush(10_000)  # the exporter is built and its imports paid before the window
    paced_floor = _paced_loop_floor(rate, 0.5) if mode != "full" else None
    rss_before = _rss_kb()
    threads_before = _threads_cpu()
    on_end_clock.reset()
    if profiles is not None:
        profiles.reset()
        profiles.main.enable()
    start_span = tracer.start_as_current_span
    created = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    end = wall0 + seconds
    if mode == "full":
        while time.perf_counter() < end:
            for _ in range(100):
                with start_span("bench.span", attributes=ATTRIBUTES):
                    pass
            created += 100
    else:
        interval, next_at = 10 / rate, wall0
        while next_at < end:
            for _ in range(10):
                with start_span("bench.span", attributes=ATTRIBUTES):
                    pass
            created += 10
            next_at += interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    produced_wall = time.perf_counter() - wall0
    rss_full = _rss_kb()
    provider.force_flush(30_000)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    result: dict[str, Any] = {
        "created": created, "cpu": cpu, "wall": wall, "produced_wall": produced_wall,
        "rss_before_kb": rss_before, "rss_full_kb": rss_full,
        "maxrss_kb": __import__("resource").getrusage(__import__("resource").RUSAGE_SELF).ru_maxrss,
        "ours": _pipeline_counts() if kind == "ours" else {},
        "threads": {name: cpu - threads_before.get(name, 0.0) for name, cpu in _threads_cpu().items()},
        "on_end": on_end_clock.seconds(), "on_end_sampled": on_end_clock.sampled, "paced_floor": paced_floor,
    }
    # the export path: everything after span.end() (on_end on the producing thread, and every other thread)
    result["export_cpu"] = result["on_end"] + sum(v for k, v in result["threads"].items() if k != MAIN)
    if profiles is not None:
        result["profile"] = _summarise(profiles.stats())
    return result


_CATEGORIES = (
    ("encode: OTLP protobuf (opentelemetry.exporter.otlp.proto.common, opentelemetry.proto, protobuf)",
     ("otlp/proto/common", "opentelemetry/proto", "google/protobuf", "SerializeToString", "_pb2", "upb")),
    ("http: requests/urllib3/http.client/socket", ("requests/", "urllib3/", "http/client", "socket", "ssl",
                                                   "sendall", "recv_into", "email/", "http/cookiejar")),
    ("ours: encoding, queue, relabel (crossbridge_otel, copy)", ("crossbridge_otel/", "/copy.py")),
    ("lock acquire (blocking waits; should be idle under a CPU timer, includes GIL hand-over)",
     ("<method 'acquire' of '_thread",)),
    ("threading (Event/Condition bookkeeping, release)", ("threading.py", "release", "_thread")),
    ("sdk span + processor (opentelemetry.sdk, api, context)", ("opentelemetry/sdk", "opentelemetry/trace",
                                                               "opentelemetry/context", "opentelemetry/util",
                                                               "opentelemetry/attributes")),
)


def _category(filename: str, function: str) -> str:
    key = f"{filename}:{function}"
    for label, needles in _CATEGORIES:
        if any(n in key for n in needles):
            return label
    return "other"


def _summarise(threads: dict[str, Any]) -> dict[str, Any]:
    summary = {}
    for name, stats in threads.items():
        total = sum(row[2] for row in stats.values())
        categories: dict[str, float] = {}
        for (filename, _, function), row in stats.items():
            label = _category(filename, function)
            categories[label] = categories.get(label, 0.0) + row[2]
        top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:14]
        summary[name] = {
            "cpu": total, "categories": categories,
            "top": [(f"{Path(f).parent.name}/{Path(f).name}:{line} {func}" if f != "~" else func, row[1], row[2],
                     row[3]) for (f, line, func), row in top],
        }
    return summary


# -- driver -------------------------------------------------------------------------------------------------------

def run_case(kind: str, mode: str, receiver: Receiver, seconds: float, rate: int,
             profile: bool = False) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CROSSBRIDGE_OTEL_"))}
    env.update(CROSSBRIDGE_HOOKS_ENABLED="false", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
               OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf", OTEL_LOGS_EXPORTER="none", OTEL_METRICS_EXPORTER="none")
    if mode == "floor":
        env["OTEL_TRACES_EXPORTER"] = "none"  # ours: the distribution running, with no span queue
    command = [sys.executable, str(HERE), "--producer", kind, "--mode", mode, "--seconds", str(seconds),
               "--rate", str(rate)] + (["--profile"] if profile else [])
    if kind == "ours":
        command = [str(VENV_BIN / "opentelemetry-instrument"), *command]
    receiver.take()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"{kind} {mode} producer failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["delivered"], result["requests"], result["bytes"] = receiver.take()
    result["dropped"] = result["created"] + 1 - result["delivered"]  # +1: the warm-up span
    result["stderr"] = done.stderr.strip()[-300:]
    return result


def _med(rows: list[dict[str, Any]], key: Any) -> str:
    values = sorted(key(r) for r in rows)
    return f"{statistics.median(values):,.0f} ({values[0]:,.0f}-{values[-1]:,.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--producer", choices=("ours", "stock"))
    parser.add_argument("--mode", choices=("full", "paced", "floor"), default="full")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    if args.producer:
        print(json.dumps(produce(args.producer, args.mode, args.seconds, args.rate, args.profile)))
        return 0

    receiver = Receiver()
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        for round_ in range(args.rounds):
            kinds = ("ours", "stock") if round_ % 2 == 0 else ("stock", "ours")
            for mode in ("full", "paced", "floor"):
                for kind in kinds:
                    row = run_case(kind, mode, receiver, args.seconds, args.rate)
                    results.setdefault((kind, mode), []).append(row)
                    print(f"round {round_ + 1} {kind:>5} {mode:>5}: created {row['created']:>7,}, delivered "
                          f"{row['delivered']:>7,}, dropped {row['dropped']:>7,}, cpu {row['cpu']:.2f} s, "
                          f"wall {row['wall']:.2f} s, maxrss {row['maxrss_kb'] / 1024:.0f} MB"
                          + f", thread cpu { {k: round(v, 3) for k, v in row['threads'].items()} }"
                          + f", export path {row['export_cpu']:.3f} s (on_end {row['on_end']:.3f} s), "
                            f"{row['requests']} requests"
                          + (f", our count {row['ours']}" if row["ours"] else ""), flush=True)
        print(f"\nspans with 3 attributes, one producing thread, {args.seconds:g} s per run, medians (min-max) of "
              f"{args.rounds} interleaved rounds")
        print("| figure | ours | stock | ours/stock | goal |")
        print("|---|---|---|---|---|")
        figures = {}
        for kind in ("ours", "stock"):
            full, paced, floor = results[(kind, "full")], results[(kind, "paced")], results[(kind, "floor")]
            floor_per_span = statistics.median(r["cpu"] / max(1, r["created"]) for r in floor)
            figures[kind] = {
                "per_core": statistics.median(r["delivered"] / r["cpu"] for r in full),
                "cpu_per_span": statistics.median(r["cpu"] / max(1, r["delivered"]) * 1e6 for r in paced),
                "export_per_span": statistics.median(r["export_cpu"] / max(1, r["delivered"]) * 1e6 for r in paced),
                "by_difference": statistics.median((r["cpu"] - floor_per_span * r["created"]) / max(1, r["delivered"])
                                                   * 1e6 for r in paced),
                "export_full": statistics.median(r["export_cpu"] / max(1, r["delivered"]) * 1e6 for r in full),
                "on_end": statistics.median(r["on_end"] / max(1, r["created"]) * 1e6 for r in paced),
                "rss": statistics.median(r["maxrss_kb"] / 1024 for r in full),
            }
            figures[kind]["text"] = {
                "created": _med(full, lambda r: r["created"]),
                "delivered": _med(full, lambda r: r["delivered"]),
                "dropped": _med(full, lambda r: r["dropped"]),
                "per_core": _med(full, lambda r: r["delivered"] / r["cpu"]),
                "per_wall": _med(full, lambda r: r["delivered"] / r["wall"]),
                "cpu_per_span": _med(paced, lambda r: r["cpu"] / max(1, r["delivered"]) * 1e6),
                "export_per_span": _med(paced, lambda r: r["export_cpu"] / max(1, r["delivered"]) * 1e6),
                "by_difference": _med(paced, lambda r, f=floor_per_span: (r["cpu"] - f * r["created"])
                                      / max(1, r["delivered"]) * 1e6),
                "floor": _med(floor, lambda r: r["cpu"] / max(1, r["created"]) * 1e6),
                "export_full": _med(full, lambda r: r["export_cpu"] / max(1, r["delivered"]) * 1e6),
                "on_end": _med(paced, lambda r: r["on_end"] / max(1, r["created"]) * 1e9),
                "producer_paced": _med(paced, lambda r: r["threads"][MAIN] / max(1, r["created"]) * 1e6),
                "paced_floor": _med(paced, lambda r: r["paced_floor"] * 1e6),
                "requests": _med(full, lambda r: r["requests"]),
                "paced_dropped": _med(paced, lambda r: r["dropped"]),
                "rss": _med(full, lambda r: r["maxrss_kb"] / 1024),
                "rss_growth": _med(full, lambda r: (r["rss_full_kb"] - r["rss_before_kb"]) / 1024),
                "rss_before": _med(full, lambda r: r["rss_before_kb"] / 1024),
            }
        o, s = figures["ours"], figures["stock"]
        rows = [
            ("spans delivered per CPU-second (full speed)", "per_core", o["per_core"] / s["per_core"], ">= 2x"),
            ("spans delivered per wall second (full speed)", "per_wall", None, ""),
            ("created at full speed", "created", None, ""),
            ("delivered at full speed", "delivered", None, ""),
            ("dropped at full speed (created - delivered)", "dropped", None, "counted"),
            ("requests at full speed", "requests", None, ""),
            ("export-path CPU per delivered span at full speed (us): on_end + export thread(s)", "export_full",
             o["export_full"] / s["export_full"], ""),
            (f"export-path CPU per delivered span at {args.rate:,}/s (us): the whole process less its floor",
             "by_difference", o["by_difference"] / s["by_difference"], "reported"),
            (f"  the floor: CPU per span at {args.rate:,}/s, same process kind, nothing exporting spans (us)", "floor",
             None, ""),
            (f"export-path CPU per delivered span at {args.rate:,}/s (us), direct: on_end + other threads",
             "export_per_span", o["export_per_span"] / s["export_per_span"], "<= 0.5x (judged)"),
            (f"  of which on_end on the producing thread, per span (ns) at {args.rate:,}/s", "on_end",
             o["on_end"] / s["on_end"], ""),
            (f"whole-process CPU per delivered span at {args.rate:,}/s (us)", "cpu_per_span",
             o["cpu_per_span"] / s["cpu_per_span"], "reported"),
            (f"  producing thread CPU per created span at {args.rate:,}/s (us; span creation, on_end, pacing)",
             "producer_paced", None, ""),
            ("  the paced loop alone, no span (us per iteration: its sleeps and wake-ups)", "paced_floor", None, ""),
            (f"dropped at {args.rate:,}/s", "paced_dropped", None, "0"),
            ("peak RSS with the queue full (MB)", "rss", o["rss"] / s["rss"], ""),
            ("  RSS before the window (the process's baseline: ours under opentelemetry-instrument)", "rss_before",
             None, ""),
            ("RSS growth during the full-speed window (MB)", "rss_growth", None, ""),
        ]
        for label, key, ratio, goal in rows:
            print(f"| {label} | {o['text'][key]} | {s['text'][key]} | {'' if ratio is None else f'{ratio:.2f}x'} "
                  f"| {goal} |")
        if not args.no_profile:
            for kind in ("ours", "stock"):
                row = run_case(kind, "full", receiver, args.seconds, args.rate, profile=True)
                print(f"\nprofile, {kind}, full speed (cProfile, per-thread CPU timer; slows everything): created "
                      f"{row['created']:,}, delivered {row['delivered']:,}, {row['requests']} requests, "
                      f"{row['bytes'] / max(1, row['delivered']):.0f} bytes/span")
                for thread, data in row["profile"].items():
                    per = data["cpu"] / max(1, row["delivered"] if "main" not in thread else row["created"]) * 1e6
                    print(f"  thread {thread}: {data['cpu']:.2f} s CPU under the profiler ({per:.1f} us per "
                          f"{'created' if 'main' in thread else 'delivered'} span)")
                    for label, secs in sorted(data["categories"].items(), key=lambda kv: -kv[1]):
                        print(f"    {secs:6.2f} s {secs / max(1e-9, data['cpu']):5.1%}  {label}")
                    print("    top functions by own time (calls, own s, cumulative s):")
                    for name, calls, own, cum in data["top"][:10]:
                        print(f"      {calls:>8} {own:6.2f} {cum:6.2f}  {name}")
    finally:
        receiver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
