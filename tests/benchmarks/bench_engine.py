"""Per-call cost of the engine's wrappers, measured side by side in one run (a script, not a test).

    .venv/bin/python tests/benchmarks/bench_engine.py [--quick]

Each case is timed in interleaved repetitions (every variant once per round, so machine noise hits all
alike) and the medians are compared:

(a) instrumentation switched off at runtime (``crossbridge_otel.set_enabled(False)``) vs a bare call, with
    the cheapest Python pass-through wrapper (a plain closure ``def w(*a, **k): return f(*a, **k)``) and a stock
    ``wrapt.FunctionWrapper`` pass-through measured alongside. Budget: ours' overhead over bare <= 1.2x the
    closure's overhead over bare (a reference measured in the same run, so it holds on any machine).
(b) a recording span through our wrapper vs the SDK's own inline ``with tracer.start_as_current_span(...)``
    plus an inline ``histogram.record(...)`` (ours records the duration too), same providers.
    Budget: <= 1.15x.
(c) a call under a sampled-out parent (ParentBased sampler, parent not sampled) vs a bare call, with the SDK's
    own inline ``with tracer.start_as_current_span(...)`` under the same parent alongside. Budgets: <= 1 us over
    bare, and <= 0.1x the SDK inline span's overhead over bare.

Every figure is a median of interleaved rounds; the spread (min-max over rounds) is printed with the raw medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import wrapt
from opentelemetry import context, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from crossbridge_otel.patching.wrapping import SWITCH, Binding, make_wrapper

STATIC = {
    "crossbridge.area": "bench",
    "crossbridge.category": "testing",
    "code.function.name": "bench.target",
}


def target(value: Any) -> Any:
    """The wrapped callable: as cheap as a call gets, so only the overhead is measured."""
    return value


def _per_call_ns(func: Callable[[Any], Any], calls: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(calls):
        func(1)
    return (time.perf_counter_ns() - started) / calls


SPREADS: dict[str, tuple[float, float]] = {}


def measure(variants: dict[str, Callable[[Any], Any]], calls: int, rounds: int,
            around: Callable[[str], Any] | None = None) -> dict[str, float]:
    """Median ns per call of each variant, interleaved round by round (min and max kept in SPREADS)."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for func in variants.values():  # warm-up
        _per_call_ns(func, max(100, calls // 10))
    for _ in range(rounds):
        for name, func in variants.items():
            token = around(name) if around is not None else None
            try:
                samples[name].append(_per_call_ns(func, calls))
            finally:
                if token is not None:
                    context.detach(token)
    SPREADS.update({name: (min(values), max(values)) for name, values in samples.items()})
    return {name: statistics.median(values) for name, values in samples.items()}


def _binding(tracer: Any, histogram: Any) -> Binding:
    return Binding(name="bench.op", tracer=tracer, histogram=histogram, static=STATIC, area="bench")


def case_switched_off(calls: int, rounds: int) -> dict[str, float]:
    provider = TracerProvider()
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench")
    ours = make_wrapper(target, _binding(provider.get_tracer("bench"), meter.create_histogram("d")))
    stock = wrapt.FunctionWrapper(target, lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs))

    def closure(*args: Any, **kwargs: Any) -> Any:  # the cheapest pass-through Python can make
        return target(*args, **kwargs)

    SWITCH.on = False
    try:
        return measure({"bare": target, "ours (off)": ours, "closure pass-through": closure,
                        "wrapt pass-through": stock}, calls, rounds)
    finally:
        SWITCH.on = True


def case_recording(calls: int, rounds: int) -> dict[str, float]:
    provider = TracerProvider()
    tracer = provider.get_tracer("bench")
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench")
    histogram = meter.create_histogram("crossbridge.operation.duration", unit="s")
    ok = {"area": "bench", "operation": "bench.op", "outcome": "ok"}
    ours = make_wrapper(target, _binding(tracer, histogram))
    perf = time.perf_counter

    def inline(value: Any) -> Any:
        started = perf()
        with tracer.start_as_current_span("bench.op", kind=SpanKind.INTERNAL, attributes=STATIC):
            result = target(value)
        histogram.record(perf() - started, ok)
        return result

    return measure({"sdk inline span + histogram": inline, "ours (recording)": ours}, calls, rounds)


def case_sampled_out(calls: int, rounds: int) -> dict[str, float]:
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench")
    ours = make_wrapper(target, _binding(provider.get_tracer("bench"), meter.create_histogram("d")))
    parent = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(0)))
    tracer = provider.get_tracer("bench")

    def sdk_inline(value: Any) -> Any:
        with tracer.start_as_current_span("bench.op", kind=SpanKind.INTERNAL, attributes=STATIC):
            return target(value)

    def under_parent(name: str) -> Any:
        return context.attach(trace.set_span_in_context(parent))

    return measure({"bare": target, "ours (parent sampled out)": ours, "sdk inline span (sampled out)": sdk_inline},
                   calls, rounds, around=under_parent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds (a smoke run)")
    args = parser.parse_args(argv)
    calls, rounds = (5_000, 5) if args.quick else (50_000, 15)
    fast_calls = calls * 4

    off = case_switched_off(fast_calls, rounds)
    recording = case_recording(calls // 5, rounds)
    sampled = case_sampled_out(fast_calls, rounds)

    off_overhead = off["ours (off)"] - off["bare"]
    closure_overhead = off["closure pass-through"] - off["bare"]
    off_ratio = off_overhead / closure_overhead
    wrapt_overhead = off["wrapt pass-through"] - off["bare"]
    ratio = recording["ours (recording)"] / recording["sdk inline span + histogram"]
    sampled_overhead = sampled["ours (parent sampled out)"] - sampled["bare"]
    sdk_sampled_overhead = sampled["sdk inline span (sampled out)"] - sampled["bare"]
    sampled_ratio = sampled_overhead / sdk_sampled_overhead
    rows = [
        ("switched off at runtime, over a bare call, / a closure pass-through's overhead",
         f"{off_ratio:.2f}x ({off_overhead:.0f} ns vs {closure_overhead:.0f} ns; whole call "
         f"{off['ours (off)'] / off['closure pass-through']:.2f}x)", "<= 1.2x", off_ratio <= 1.2),
        ("  (reference) stock wrapt pass-through, over a bare call", f"{wrapt_overhead:.0f} ns", "", None),
        ("recording span: ours / SDK inline span + histogram",
         f"{ratio:.2f}x ({recording['ours (recording)'] / 1000:.2f} us vs "
         f"{recording['sdk inline span + histogram'] / 1000:.2f} us)", "<= 1.15x", ratio <= 1.15),
        ("parent sampled out, over a bare call", f"{sampled_overhead:.0f} ns", "<= 1000 ns",
         sampled_overhead <= 1000),
        ("parent sampled out: ours / the SDK's inline span under the same parent (overheads over bare)",
         f"{sampled_ratio:.3f}x ({sampled_overhead:.0f} ns vs {sdk_sampled_overhead:.0f} ns)", "<= 0.1x",
         sampled_ratio <= 0.1),
    ]
    print(f"python {sys.version.split()[0]}, medians of {rounds} interleaved rounds")
    print("| case | measured | budget | ok |")
    print("|---|---|---|---|")
    for case, value, budget, passed in rows:
        mark = "" if passed is None else ("yes" if passed else "NO")
        print(f"| {case} | {value} | {budget} | {mark} |")
    print("raw medians (ns/call):", {k: round(v) for d in (off, recording, sampled) for k, v in d.items()})
    print("spread over rounds (min-max ns/call):", {k: f"{lo:.0f}-{hi:.0f}" for k, (lo, hi) in SPREADS.items()})
    return 0 if all(p is not False for *_, p in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
