"""Whole-workload cost: CrossBridge's own test subset plainly vs under `opentelemetry-instrument`, interleaved.

    bash tests/setup/loopback-only.sh .venv/bin/python tests/benchmarks/bench_suite.py [--rounds N]

Each round runs the subset SNAPSHOT.md lists (572 tests) once plainly and once instrumented, exporting OTLP/HTTP
to a real receiver on 127.0.0.1 (tests/otlp_sink.py), each from a fresh copy of the CrossBridge tree; the order
alternates between rounds so drift on a shared machine falls on both sides. It prints each round's wall times
and differing tests, then the medians and their ratio. The runner is tests/behaviour/suite_runner.py, the same
one the behaviour test uses. Run it inside the loopback-only namespace: CrossBridge's tests import CrossBridge.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS / "behaviour")]

from otlp_sink import OtlpSink  # noqa: E402
from suite_runner import differences, run_suite  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one run may take")
    args = parser.parse_args()
    walls: dict[str, list[float]] = {"plain": [], "instrumented": []}
    for round_ in range(args.rounds):
        order = ("plain", "instrumented") if round_ % 2 == 0 else ("instrumented", "plain")
        runs = {}
        for mode in order:
            with OtlpSink() as sink:
                endpoint = sink.endpoint if mode == "instrumented" else None
                runs[mode] = run_suite(mode, endpoint=endpoint, timeout=args.timeout)
                spans, logs = len(sink.spans()), len(sink.log_records())
            walls[mode].append(runs[mode].wall_seconds)
            received = f", received {spans} spans, {logs} log records" if endpoint else ""
            print(f"round {round_ + 1} {mode:>12}: {runs[mode].wall_seconds:6.1f} s, "
                  f"{len(runs[mode].outcomes)} tests{received}", flush=True)
        for nodeid, plain, instrumented in differences(runs["plain"], runs["instrumented"]):
            print(f"  differs {nodeid}: plain {plain}, instrumented {instrumented}")
    plain, instrumented = statistics.median(walls["plain"]), statistics.median(walls["instrumented"])
    print(f"median wall time: plain {plain:.1f} s, instrumented {instrumented:.1f} s, "
          f"ratio {instrumented / plain:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
