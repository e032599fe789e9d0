"""Benchmark of the CrossBridge log bridge against the SDK's own logging handler, in one run.

Run: ``.venv/bin/python tests/benchmarks/bench_logs.py [--rounds 15] [--calls 20000]``

Every case is timed in interleaved rounds (A, B, C, A, B, C, ...) and the minimum per-call time over the
rounds is kept, so the machine's load hits all cases alike. Budgets (issue 4):

- below-level record: bridge installed minus not installed ≤ 20 ns (CrossBridgeLogger and plain logger);
- exported record: handler cost of the bridge ≤ 1.15 x the SDK ``LoggingHandler``'s, same provider with a
  no-op processor. Handler cost = the logging call with the handler minus the same call with a
  ``NullHandler`` (record creation and CrossBridge's own folding are common to both);
- category enrichment ≤ 2 µs: what the bridge does for the category (per-logger-name scope lookup and
  the ``crossbridge.category`` attribute), measured as a bare handler with those two steps minus the same
  bare handler without them. The bare handler emits the record to the same cached OTel logger as the SDK
  handler would see it (severity, body, the record's own ``code.*``);
- all CrossBridge enrichment (reported, no budget of its own): the bridge minus the bare handler, i.e.
  category, real caller past ``core/logging/logger.py``, folded fields as attributes, redaction check.

Three records: a CrossBridgeLogger ``info`` with two keyword fields, one without fields, and a plain
``core.*`` stdlib logger record.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from support.crossbridge_target import CROSSBRIDGE_SRC, missing_reason  # noqa: E402

if CROSSBRIDGE_SRC is None:
    raise SystemExit(missing_reason())
sys.path.insert(0, str(CROSSBRIDGE_SRC))  # the real CrossBridge: run this inside tests/setup/loopback-only.sh

from opentelemetry._logs import get_logger  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, LogRecordProcessor  # noqa: E402

from crossbridge_otel.logs.bridge import LogBridge  # noqa: E402
from crossbridge_otel.logs.handler import severity  # noqa: E402

warnings.simplefilter("ignore", DeprecationWarning)  # the SDK LoggingHandler announces its own deprecation


class NoopProcessor(LogRecordProcessor):
    """Drops every record: the benchmark measures the handlers, not an exporter."""

    def on_emit(self, log_record):  # type: ignore[no-untyped-def]
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class BareHandler(logging.Handler):
    """The least a bridge must do: same cached OTel logger, severity, body and the record's location."""

    def __init__(self, provider: LoggerProvider) -> None:
        super().__init__()
        self._provider = provider
        self._loggers: dict[str, object] = {}
        self._scopes: dict[str, tuple[object, str]] = {}

    def attributes(self, record: logging.LogRecord) -> dict:
        return {"code.file.path": record.pathname, "code.function.name": record.funcName,
                "code.line.number": record.lineno}

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        otel = self._loggers.get(record.name) or self._loggers.setdefault(
            record.name, get_logger(record.name, None, self._provider)
        )
        number, text = severity(record.levelno, record.levelname)
        otel.emit(  # type: ignore[attr-defined]
            timestamp=int(record.created * 1e9), severity_number=number, severity_text=text,
            body=record.getMessage(),
            attributes=self.attributes(record),
        )


class CategoryHandler(BareHandler):
    """The bare handler plus the bridge's category step: scope lookup by logger name, category attribute."""

    def attributes(self, record: logging.LogRecord) -> dict:
        scope = self._scopes.get(record.name) or self._scopes.setdefault(record.name, (None, "execution"))
        attributes = {"crossbridge.category": scope[1]}
        attributes.update(super().attributes(record))
        return attributes


def per_call_ns(call: Callable[[], None], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        call()
    return (time.perf_counter_ns() - start) / calls


def interleaved(cases: dict[str, tuple[Callable[[], None], Callable[[], None], Callable[[], None]]],
                rounds: int, calls: int) -> dict[str, float]:
    """cases: name -> (setup, call, teardown); the minimum ns per call over ``rounds`` interleaved rounds."""
    best = {name: float("inf") for name in cases}
    for _ in range(rounds):
        for name, (setup, call, teardown) in cases.items():
            setup()
            try:
                best[name] = min(best[name], per_call_ns(call, calls))
            finally:
                teardown()
    return best


def nothing() -> None:
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20000)
    options = parser.parse_args()

    import core.logging.logger as cb_module
    from core.logging import LogCategory
    from core.logging import get_logger as cb_get_logger

    cb_module._console_enabled = False  # no console I/O in the timings
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(NoopProcessor())
    bridge = LogBridge(provider)

    cb = cb_get_logger("bench.cb", LogCategory.EXECUTION)  # CrossBridgeLogger at INFO
    plain = logging.getLogger("core.bench.plain")  # plain CrossBridge-package logger, propagates to "core"
    logging.getLogger("core").setLevel(logging.INFO)
    logging.getLogger("core").propagate = False  # keep root (lastResort) out of the plain-logger timings
    sdk_cb = cb._logger

    def attach(logger: logging.Logger, handler: logging.Handler) -> tuple[Callable[[], None], Callable[[], None]]:
        return (lambda: logger.addHandler(handler)), (lambda: logger.removeHandler(handler))

    sdk_handler = LoggingHandler(logger_provider=provider)
    null_handler = logging.NullHandler()
    bare_handler = BareHandler(provider)
    category_handler = CategoryHandler(provider)
    core_logger = logging.getLogger("core")

    def cb_below() -> None:
        cb.debug("below level", step=1)

    def plain_below() -> None:
        plain.debug("below level %s", 1)

    def cb_fields() -> None:
        cb.info("exported", step=1, user="bob")

    def cb_info() -> None:
        cb.info("exported")

    def plain_info() -> None:
        plain.info("exported %s", 1)

    below = interleaved({
        "cb below, no bridge": (nothing, cb_below, nothing),
        "cb below, bridge": (bridge.install, cb_below, bridge.uninstall),
        "plain below, no bridge": (nothing, plain_below, nothing),
        "plain below, bridge": (bridge.install, plain_below, bridge.uninstall),
    }, options.rounds, options.calls)

    exported = interleaved(_exported_cases(bridge, attach, sdk_cb, core_logger, null_handler, sdk_handler,
                                           bare_handler, category_handler, cb_fields, cb_info, plain_info),
                           options.rounds,
                           max(1, options.calls // 4))
    report(below, exported)


def _exported_cases(bridge, attach, sdk_cb, core_logger, null_handler, sdk_handler, bare_handler,
                    category_handler, cb_fields, cb_info, plain_info):
    """Each logger with a NullHandler, the SDK handler, the bare handler, and the bridge."""
    cases = {}
    for label, logger, call in (("cb+fields", sdk_cb, cb_fields), ("cb", sdk_cb, cb_info),
                                ("plain", core_logger, plain_info)):
        for kind, handler in (("NullHandler", null_handler), ("SDK LoggingHandler", sdk_handler),
                              ("bare handler", bare_handler), ("category handler", category_handler)):
            setup, teardown = attach(logger, handler)
            cases[f"{label} info, {kind}"] = (setup, call, teardown)
        cases[f"{label} info, bridge"] = (bridge.install, call, bridge.uninstall)
    return cases


def report(below: dict[str, float], exported: dict[str, float]) -> None:
    rows = []
    for label in ("cb", "plain"):
        delta = below[f"{label} below, bridge"] - below[f"{label} below, no bridge"]
        rows.append((f"{label}: below-level record, added cost", f"{delta:+.1f} ns",
                     f"(no bridge {below[f'{label} below, no bridge']:.0f} ns)", "≤ 20 ns", delta <= 20))
    for label in ("cb+fields", "cb", "plain"):
        base = exported[f"{label} info, NullHandler"]
        sdk = exported[f"{label} info, SDK LoggingHandler"] - base
        ours = exported[f"{label} info, bridge"] - base
        bare = exported[f"{label} info, bare handler"] - base
        rows.append((f"{label}: exported record, bridge / SDK handler", f"{ours / sdk:.2f}x",
                     f"(bridge {ours / 1000:.2f} µs, SDK {sdk / 1000:.2f} µs)", "≤ 1.15x", ours / sdk <= 1.15))
        category = exported[f"{label} info, category handler"] - base - bare
        rows.append((f"{label}: category enrichment", f"{category / 1000:.2f} µs",
                     f"(bare export {bare / 1000:.2f} µs)", "≤ 2 µs", category <= 2000))
        enrich = ours - bare
        rows.append((f"{label}: all CrossBridge enrichment", f"{enrich / 1000:.2f} µs",
                     "(category, caller, fields, redaction)", "-", True))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  {'detail':<38}  {'budget':<8}  holds")
    for name, value, detail, budget, ok in rows:
        verdict = "-" if budget == "-" else ("yes" if ok else "NO")
        print(f"{name:<{width}}  {value:>12}  {detail:<38}  {budget:<8}  {verdict}")


if __name__ == "__main__":
    main()
