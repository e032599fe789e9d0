"""One instrumented CrossBridge process for the scale-out tests (tests/e2e/test_scaleout.py), run under
``opentelemetry-instrument`` with ``CROSSBRIDGE_OTEL_STRICT=false``, exporting to the agent collector.

    python scaleout_workload.py run <facts.jsonl> <operations> <pace_s> <seed> <slow_s> <with_child>
    python scaleout_workload.py child <facts.jsonl>

Each operation is one trace: a root span ``scaleout.op`` around real CrossBridge calls. Its kind decides what the
tail sampler must do with it:

    ok         JaCoCo and coverage.py parses of good reports, each on a worker thread of a pool, so the trace
               spans threads; kept only at the sampled share
    error      coverage.py parser given an XML report: CrossBridge prints the error and returns None (ERROR span)
    retry      core.runtime.retry.retry_with_backoff around a call that fails twice: ``retry`` events, no error
    ratelimit  two cypress->playwright translations through the ``translation`` token bucket: the second waits
               (a ``rate_limit.wait`` event), both succeed
    slow       a good JaCoCo parse and ``slow_s`` of waiting inside the root: longer than the latency threshold
    child      (once, when with_child=1) a retry operation that also runs an instrumented child process which
               parses a report in the same trace (TRACEPARENT): the trace spans two processes

It imports CrossBridge and the OpenTelemetry API only, never crossbridge_otel. Facts go to <facts.jsonl>, one JSON
object per line: every span this process ended (trace id, span id, name), every operation (trace id, kind, the
root's duration, how long the CrossBridge work took), and a last ``exit`` line.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import SpanProcessor

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SCOPE = "crossbridge.e2e.scaleout"
#: Kinds per cycle of ten operations (shuffled per process): 6 ok, 1 each of the kept kinds.
CYCLE = ("ok",) * 6 + ("error", "retry", "ratelimit", "slow")


class SpanLog(SpanProcessor):
    """Every sampled span this process ends: what Jaeger must hold for each kept trace."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def on_end(self, span) -> None:  # type: ignore[no-untyped-def]
        ctx = span.context
        if ctx is None or not ctx.trace_flags.sampled:
            return
        with self._lock:
            self.spans.append(
                {"type": "span", "trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}",
                 "name": span.name, "pid": os.getpid()}
            )


def _span_log() -> SpanLog:
    log = SpanLog()
    trace.get_tracer_provider().add_span_processor(log)  # type: ignore[attr-defined]
    return log


# ---------------------------------------------------------------------------------------------- operations
def op_ok() -> None:
    from core.coverage.coverage_py_parser import CoveragePyParser
    from core.coverage.jacoco_parser import JaCoCoXMLParser

    # the threading instrumentation carries the root's context into the pool's threads
    with ThreadPoolExecutor(max_workers=2) as pool:
        a = pool.submit(JaCoCoXMLParser().parse, SAMPLES / "jacoco.xml", test_id="scaleout")
        b = pool.submit(CoveragePyParser().parse, SAMPLES / "coverage.json", test_name="scaleout")
        if a.result() is None or b.result() is None:
            raise SystemExit("a good report did not parse")


def op_error() -> None:
    from core.coverage.coverage_py_parser import CoveragePyParser

    # CoveragePyParser reads JSON: given the XML report it prints "Error parsing ..." and returns None
    if CoveragePyParser().parse(SAMPLES / "coverage.xml", test_name="scaleout") is not None:
        raise SystemExit("the bad report parsed")


def op_retry() -> None:
    from core.runtime.retry import RetryPolicy, retry_with_backoff

    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError(f"storage unavailable (call {len(calls)})")
        return "ok"

    if retry_with_backoff(flaky, RetryPolicy(max_attempts=4, base_delay=0.005, max_delay=0.01)) != "ok":
        raise SystemExit("retry_with_backoff did not return the result")


def op_ratelimit() -> None:
    from core.translation.pipeline import TranslationConfig, TranslationPipeline

    source = (SAMPLES / "login.cy.js").read_text(encoding="utf-8")
    pipeline = TranslationPipeline(TranslationConfig("cypress", "playwright"))
    for _ in range(2):  # the bucket holds one token: the second translation waits for the refill
        if not pipeline.translate(source, source_file="login.cy.js").success:
            raise SystemExit("the translation failed")


def op_slow(slow_s: float) -> None:
    from core.coverage.jacoco_parser import JaCoCoXMLParser

    JaCoCoXMLParser().parse(SAMPLES / "jacoco.xml", test_id="scaleout-slow")
    time.sleep(slow_s)


def op_child(facts: Path) -> None:
    op_retry()
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    env = {**os.environ, "TRACEPARENT": carrier["traceparent"]}
    env.pop("TRACESTATE", None)
    venv_bin = Path(sys.executable).parent
    child_facts = facts.with_name(facts.stem + "-child.jsonl")
    subprocess.run(
        [str(venv_bin / "opentelemetry-instrument"), sys.executable, __file__, "child", str(child_facts)],
        env=env, check=True, timeout=120,
    )


# ---------------------------------------------------------------------------------------------- modes
def _warm_up() -> None:
    """Import what the operations use before the first one, so no operation's duration is an import's."""
    import core.coverage.coverage_py_parser
    import core.coverage.jacoco_parser
    import core.runtime.retry
    import core.translation.pipeline  # noqa: F401


def run(facts: Path, operations: int, pace_s: float, seed: int, slow_s: float, with_child: bool) -> None:
    _warm_up()
    spans = _span_log()
    tracer = trace.get_tracer(SCOPE)
    rng = random.Random(seed)
    kinds: list[str] = []
    while len(kinds) < operations:
        cycle = list(CYCLE)
        rng.shuffle(cycle)
        kinds.extend(cycle)
    kinds = kinds[:operations]
    if with_child:
        kinds[operations // 2] = "child"
    ops: list[dict[str, Any]] = []
    for index, kind in enumerate(kinds):
        started = time.time()
        with tracer.start_as_current_span("scaleout.op") as root:
            root.set_attribute("e2e.kind", kind)
            root.set_attribute("e2e.index", index)
            t0 = time.perf_counter()
            if kind == "slow":
                op_slow(slow_s)
            elif kind == "child":
                op_child(facts)
            else:
                {"ok": op_ok, "error": op_error, "retry": op_retry, "ratelimit": op_ratelimit}[kind]()
            work_ms = (time.perf_counter() - t0) * 1000 - (slow_s * 1000 if kind == "slow" else 0)
            ctx = root.get_span_context()
        ops.append(
            {"type": "op", "trace_id": f"{ctx.trace_id:032x}", "kind": kind, "index": index, "started": started,
             "duration_ms": (root.end_time - root.start_time) / 1e6, "work_ms": work_ms, "pid": os.getpid()}
        )
        time.sleep(pace_s)
    with open(facts, "w", encoding="utf-8") as out:
        for record in [*spans.spans, *ops]:
            out.write(json.dumps(record) + "\n")
        out.write(json.dumps({"type": "exit", "pid": os.getpid(), "last_statement": time.time()}) + "\n")


def child(facts: Path) -> None:
    """The child process of a ``child`` operation: joins the parent's trace from TRACEPARENT (the distro does it)."""
    from core.coverage.jacoco_parser import JaCoCoXMLParser

    spans = _span_log()
    JaCoCoXMLParser().parse(SAMPLES / "jacoco.xml", test_id="scaleout-child")
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    with open(facts, "w", encoding="utf-8") as out:
        for record in spans.spans:
            out.write(json.dumps(record) + "\n")


def main(argv: list[str]) -> None:
    if argv[1] == "child":
        child(Path(argv[2]))
        return
    facts, operations, pace_s, seed, slow_s, with_child = argv[2:8]
    run(Path(facts), int(operations), float(pace_s), int(seed), float(slow_s), with_child == "1")


if __name__ == "__main__":
    main(sys.argv)
