"""Whole-workload cost: CrossBridge's own test subset plainly vs under `opentelemetry-instrument`, interleaved.

    bash tests/setup/loopback-only.sh .venv/bin/python tests/benchmarks/bench_suite.py [--rounds N] [--no-profile]

Each round runs the subset SNAPSHOT.md lists (572 tests) once plainly and once instrumented, exporting OTLP/HTTP
to a real receiver on 127.0.0.1 (tests/support/otlp_sink.py), each from a fresh copy of the CrossBridge tree; the order
alternates between rounds so drift on a shared machine falls on both sides. It prints each round's wall times
and differing tests, then the medians, and the ratio (the median of the per-round ratios, each round a back-to-back
pair) with every per-round ratio as its spread, against the goal (<= 1.05x). The runner is
tests/behaviour/suite_runner.py, the same one the behaviour test uses.

Then (unless --no-profile) one more round of each mode with tests/benchmarks/suite_profile_plugin.py loaded,
which says WHERE the added time goes: per instrumented callable (calls, time in our wrapper excluding the
callable), the log bridge (records, time), child processes (how many start, how many are Python and so pay the
instrumented start-up, measured here per process against plain), and CPU of the process, its children and our
export threads. The profiling round is not part of the timed medians (the hook costs time of its own).
Run it inside the loopback-only namespace: CrossBridge's tests import CrossBridge.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS / "behaviour")]

import suite_runner  # noqa: E402
from suite_runner import differences, run_suite  # noqa: E402
from support.crossbridge_target import CROSSBRIDGE_SRC  # noqa: E402
from support.otlp_sink import OtlpSink  # noqa: E402

GOAL = 1.05
PLUGIN = Path(__file__).with_name("suite_profile_plugin.py")


def timed_rounds(rounds: int, timeout: float) -> dict[str, list[float]]:
    walls: dict[str, list[float]] = {"plain": [], "instrumented": []}
    for round_ in range(rounds):
        order = ("plain", "instrumented") if round_ % 2 == 0 else ("instrumented", "plain")
        runs = {}
        for mode in order:
            with OtlpSink() as sink:
                endpoint = sink.endpoint if mode == "instrumented" else None
                runs[mode] = run_suite(mode, endpoint=endpoint, timeout=timeout)
                spans, logs = len(sink.spans()), len(sink.log_records())
            walls[mode].append(runs[mode].wall_seconds)
            received = f", received {spans} spans, {logs} log records" if endpoint else ""
            print(f"round {round_ + 1} {mode:>12}: {runs[mode].wall_seconds:6.1f} s, "
                  f"{len(runs[mode].outcomes)} tests{received}", flush=True)
        for nodeid, plain, instrumented in differences(runs["plain"], runs["instrumented"]):
            print(f"  differs {nodeid}: plain {plain}, instrumented {instrumented}")
    return walls


def print_ratio(walls: dict[str, list[float]]) -> None:
    plain, instrumented = statistics.median(walls["plain"]), statistics.median(walls["instrumented"])
    in_order = [i / p for p, i in zip(walls["plain"], walls["instrumented"])]
    ratios = sorted(in_order)
    spread = lambda values: f"{min(values):.1f}-{max(values):.1f} s"  # noqa: E731
    # The verdict uses the median of the per-round ratios: each round's pair ran back to back, so drift of a
    # shared machine's load cancels within a pair; the ratio of the two medians pairs nothing and is shown beside.
    ratio = statistics.median(ratios)
    print(f"median wall time: plain {plain:.1f} s ({spread(walls['plain'])}), instrumented {instrumented:.1f} s "
          f"({spread(walls['instrumented'])}); ratio of the medians {instrumented / plain:.3f}x")
    print(f"ratio instrumented/plain: {ratio:.3f}x, median of {len(ratios)} interleaved rounds (per-round ratios "
          f"{', '.join(f'{r:.3f}' for r in ratios)}); goal <= {GOAL:.2f}x: {'yes' if ratio <= GOAL else 'NO'}")
    # Whichever mode runs second in a pair tends to be faster (warm page cache): show both orders apart.
    plain_first, inst_first = in_order[0::2], in_order[1::2]
    if plain_first and inst_first:
        both = math.sqrt(statistics.median(plain_first) * statistics.median(inst_first))
        print(f"by order: plain first {statistics.median(plain_first):.3f}x ({len(plain_first)} rounds), instrumented "
              f"first {statistics.median(inst_first):.3f}x ({len(inst_first)}); geometric mean of the two {both:.3f}x")


def profiled_run(mode: str, timeout: float) -> tuple[float, dict[str, Any], int, int]:
    """One run with the profiling plugin; (wall seconds, the plugin's JSON, spans received, log records)."""
    with tempfile.TemporaryDirectory(prefix=f"crossbridge-suite-profile-{mode}-") as tmp, OtlpSink() as sink:
        work = Path(tmp)
        copy, plugin_dir = work / "src", work / "plugin"
        shutil.copytree(CROSSBRIDGE_SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
        plugin_dir.mkdir()
        for plugin in (suite_runner._PLUGIN, PLUGIN):
            shutil.copy(plugin, plugin_dir / plugin.name)
        endpoint = sink.endpoint if mode == "instrumented" else None
        env = suite_runner._environment(copy, plugin_dir, endpoint)
        profile_json = work / "profile.json"
        env["SUITE_PROFILE_JSON"] = str(profile_json)
        command = [*suite_runner._command(mode, work / "outcomes.json"), "-p", PLUGIN.stem]
        started = time.monotonic()
        try:
            suite_runner._run_bounded(command, cwd=copy, env=env, log=work / "pytest.log", timeout=timeout)
        finally:
            suite_runner._forget_bytecode(copy)
        wall = time.monotonic() - started
        if not profile_json.exists():
            raise RuntimeError(f"profiling run ({mode}) wrote nothing:\n{(work / 'pytest.log').read_text()[-3000:]}")
        counts = (len(sink.spans()), len(sink.log_records()))
        return wall, json.loads(profile_json.read_text()), *counts


def child_startup(rounds: int = 9) -> tuple[float, float]:
    """Median seconds of `python -c pass` plainly vs as an instrumented suite's Python child starts
    (under opentelemetry-instrument with the suite's environment), interleaved."""
    with tempfile.TemporaryDirectory() as tmp, OtlpSink() as sink:
        copy = Path(tmp)
        plain_env = suite_runner._environment(copy, copy, None)
        inst_env = suite_runner._environment(copy, copy, sink.endpoint)
        cases = {"plain": ([sys.executable, "-c", "pass"], plain_env),
                 "instrumented": ([str(suite_runner.INSTRUMENT), sys.executable, "-c", "pass"], inst_env)}
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, (command, env) in cases.items():
                started = time.perf_counter()
                subprocess.run(command, env=env, check=True, cwd=tmp)
                samples[name].append(time.perf_counter() - started)
    return statistics.median(samples["plain"]), statistics.median(samples["instrumented"])


def print_profile(timeout: float, save: Path | None = None) -> None:
    print("\nprofiling round (suite_profile_plugin loaded; not part of the medians above):", flush=True)
    plain_wall, plain, _, _ = profiled_run("plain", timeout)
    inst_wall, inst, spans, logs = profiled_run("instrumented", timeout)
    if save is not None:
        save.write_text(json.dumps({"plain": plain, "instrumented": inst}, indent=1))
    print(f"  wall: plain {plain_wall:.1f} s, instrumented {inst_wall:.1f} s ({inst_wall - plain_wall:+.1f} s, one "
          f"pair: noise); "
          f"received {spans} spans, {logs} log records; hooks: {inst['hook']}")
    callables = inst["callables"]
    added = sum(c["added_seconds"] for c in callables.values())
    calls = sum(c["calls"] for c in callables.values())
    first = sum(c.get("first_added_seconds", 0.0) for c in callables.values())
    added_cpu = sum(c.get("added_cpu_seconds", 0.0) for c in callables.values())
    print(f"  instrumented callables: {calls} calls, {added:.2f} s wall ({added_cpu:.2f} s CPU) in our wrappers "
          f"(hook cost {inst['calibration_seconds_per_call'] * 1e9:.0f} ns/call subtracted), of which {first:.2f} s "
          f"in the first call of each (lazy set-up); top by added time, then by calls:")
    print("  | span | calls | added total (CPU) | first call | added per later call |")
    print("  |---|---|---|---|---|")
    by_added = sorted(callables.items(), key=lambda kv: -kv[1]["added_seconds"])[:12]
    by_calls = [kv for kv in sorted(callables.items(), key=lambda kv: -kv[1]["calls"])[:6] if kv not in by_added]
    for name, row in by_added + by_calls:
        head = row.get("first_added_seconds", 0.0)
        later = (row["added_seconds"] - head) / (row["calls"] - 1) * 1e6 if row["calls"] > 1 else 0.0
        print(f"  | {name} | {row['calls']} | {row['added_seconds'] * 1000:.1f} ms "
              f"({row.get('added_cpu_seconds', 0.0) * 1000:.1f} ms) | {head * 1000:.1f} ms | "
              f"{max(later, 0.0):.1f} us |")
    if inst["untimed_targets"]:
        print(f"  wrapped but not timed (generator/coroutine/class targets): {inst['untimed_targets']}")
    log = inst["logs"]
    log_cpu = log.get("cpu_seconds", 0.0)
    per_log = log["seconds"] / log["records"] * 1e6 if log["records"] else 0.0
    later_log = ((log["seconds"] - log.get("first_seconds", 0.0)) / (log["records"] - 1) * 1e6
                 if log["records"] > 1 else 0.0)
    print(f"  log bridge: {log['records']} records through BridgeHandler.handle in {inst_wall:.0f} s "
          f"({log['records'] / inst_wall:.1f}/s), {log['seconds'] * 1000:.0f} ms ({per_log:.1f} us/record; first "
          f"record {log.get('first_seconds', 0.0) * 1000:.1f} ms, later ones {later_log:.1f} us each, slowest "
          f"{log.get('max_seconds', 0.0) * 1000:.1f} ms) = {log['seconds'] / inst_wall * 100:.2f} % of the wall "
          f"time; CPU {log_cpu * 1000:.0f} ms ({log_cpu / max(log['records'], 1) * 1e6:.1f} us/record)")
    cold, warm = child_startup()
    for label, data in (("plain", plain), ("instrumented", inst)):
        procs = data["processes"]
        top = sorted(procs["commands"].items(), key=lambda kv: -kv[1])[:6]
        print(f"  child processes ({label}): {procs['popen']} started by subprocess ({procs['python']} Python), "
              f"{procs['forks']} forks; commands: {top}")
    python_children = inst["processes"]["python"]
    print(f"  per-process start-up (`python -c pass`): plain {cold * 1000:.0f} ms, under opentelemetry-instrument "
          f"{warm * 1000:.0f} ms (+{(warm - cold) * 1000:.0f} ms); x {python_children} Python children = "
          f"~{(warm - cold) * python_children:.1f} s")
    for label, data in (("plain", plain), ("instrumented", inst)):
        cpu = data["cpu"]
        threads = ", ".join(f"{k} {v:.2f} s" for k, v in sorted(cpu["threads"].items(), key=lambda kv: -kv[1])[:6])
        print(f"  CPU ({label}): pytest process {cpu['self']:.1f} s, children {cpu['children']:.1f} s; "
              f"threads other than main: {threads or 'none'}")
    extra_cpu, extra_wall = inst["cpu"]["self"] - plain["cpu"]["self"], inst_wall - plain_wall
    print(f"  accounted: wrappers {added:.1f} s (CPU {added_cpu:.1f} s) + log bridge {log['seconds']:.1f} s + "
          f"child start-up ~{(warm - cold) * python_children:.1f} s; process CPU {extra_cpu:+.1f} s, "
          f"wall {extra_wall:+.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one run may take")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiling round")
    parser.add_argument("--profile-only", action="store_true", help="only the profiling round")
    parser.add_argument("--profile-json", type=Path, help="also write both runs' profile data to this file")
    args = parser.parse_args()
    if not args.profile_only:
        print_ratio(timed_rounds(args.rounds, args.timeout))
    if not args.no_profile:
        print_profile(args.timeout, args.profile_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
