"""First-try success cost of the retry layer, side by side in one run (a script, not a test).

    .venv/bin/python tests/benchmarks/bench_retry.py [--rounds 15] [--calls 50000]

Cases, timed in interleaved rounds (every case once per round, so machine noise hits all alike); the minimum
per-call time over the rounds is kept:

- bare: ``fn(*args, **kwargs)``, the call the engine makes without an invoker;
- ours: the invoker ``Retry("default")`` builds, called as the engine calls it (``invoker(fn, args, kwargs,
  span)``) with a recording SDK span; it counts the attempt (``crossbridge.retry.attempts``);
- ours, swallowing target: the same for a target with an ``outcome`` (reads the result, runs the attempt
  under the swallowed-failure observer);
- stock backoff: ``backoff.on_exception(backoff.expo, Exception, max_tries=3)`` around ``fn``.

Budget (issue 5): ours minus bare <= 0.5 us.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import backoff
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from crossbridge_otel.patching.invokers import InvokerEnv, build_chain
from crossbridge_otel.patching.readers import failed_if_false
from crossbridge_otel.patching.targets import Target
from crossbridge_otel.retry.invoker import Retry
from crossbridge_otel.settings import load as load_settings

BUDGET_US = 0.5


def target_function(a: int, b: int = 1) -> int:
    return a + b


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=50000)
    options = parser.parse_args()

    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench")
    span = TracerProvider().get_tracer("bench").start_span("bench")
    settings = load_settings(environ={}, warn=False)

    def invoker_for(target: Target) -> Any:
        return build_chain(target.invokers, InvokerEnv(target, "bench", settings, meter, {}))

    plain = invoker_for(Target("bench", "f", "bench.f", invokers=(Retry("default"),)))
    swallowing = invoker_for(Target("bench", "g", "bench.g", outcome=failed_if_false(), invokers=(Retry("default"),)))
    stock = backoff.on_exception(backoff.expo, Exception, max_tries=3, logger=None)(target_function)
    fn, args, kwargs = target_function, (1,), {"b": 2}

    cases: dict[str, Callable[[], Any]] = {
        "bare call": lambda: fn(*args, **kwargs),
        "Retry('default') invoker": lambda: plain(fn, args, kwargs, span),
        "retry, swallowing target": lambda: swallowing(fn, args, kwargs, span),
        "stock backoff.on_exception": lambda: stock(*args, **kwargs),
    }
    loop = range(options.calls)
    best = {name: float("inf") for name in cases}
    for _ in range(options.rounds):
        for name, case in cases.items():
            started = time.perf_counter()
            for _ in loop:
                case()
            best[name] = min(best[name], (time.perf_counter() - started) / options.calls * 1e6)

    bare = best["bare call"]
    print(f"{'case':32} {'us/call':>9} {'over bare':>10}")
    for name, value in best.items():
        print(f"{name:32} {value:9.3f} {value - bare:+10.3f}")
    over = best["Retry('default') invoker"] - bare
    verdict = "within" if over <= BUDGET_US else "OVER"
    print(f"\nfirst-try success: {over:.3f} us over the bare call ({verdict} the {BUDGET_US} us budget); "
          f"stock backoff: {best['stock backoff.on_exception'] - bare:.3f} us over")
    return 0 if over <= BUDGET_US else 1


if __name__ == "__main__":
    raise SystemExit(main())
