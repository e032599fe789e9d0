"""What the diversion of our threads' records costs the application's logging path (issue 11).

    .venv/bin/python tests/benchmarks/bench_voice.py

``crossbridge_otel._voice.install()`` wraps ``logging.Logger.handle``: every record the application logs (above its
logger's level: records below it never reach ``handle``) pays one more Python call and one thread-local read.
Interleaved rounds of the same ``logger.info`` to a handler that does nothing, stdlib vs wrapped; prints the medians
and the difference in nanoseconds per record.
"""

from __future__ import annotations

import logging
import statistics
import time
import timeit

from crossbridge_otel import _voice

N, ROUNDS = 20_000, 15


class Nothing(logging.Handler):
    def emit(self, record):
        pass


def _round(logger: logging.Logger) -> float:
    started = time.perf_counter_ns()
    for _ in range(N):
        logger.info("a record")
    return (time.perf_counter_ns() - started) / N


def _handle_ns(logger: logging.Logger, record: logging.LogRecord) -> float:
    """The least time of several rounds of ``logger.handle(record)``: the wrapper's own cost, little noise."""
    return min(timeit.repeat(lambda: logger.handle(record), number=N, repeat=ROUNDS)) / N * 1e9


def main() -> None:
    logger = logging.getLogger("bench.voice")
    logger.setLevel(logging.INFO)
    logger.addHandler(Nothing())
    logger.propagate = False
    plain, wrapped = [], []
    for _ in range(ROUNDS):
        plain.append(_round(logger))
        _voice.install()
        wrapped.append(_round(logger))
        _voice.uninstall()
    p, w = statistics.median(plain), statistics.median(wrapped)
    print(f"logger.info to a handler that does nothing: stdlib {p:.0f} ns, with our threads diverted {w:.0f} ns "
          f"(+{w - p:.0f} ns per record, medians)")
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "a record", (), None)
    bare = _handle_ns(logger, record)
    _voice.install()
    ours = _handle_ns(logger, record)
    _voice.uninstall()
    print(f"Logger.handle alone: stdlib {bare:.0f} ns, wrapped {ours:.0f} ns (+{ours - bare:.0f} ns, least of "
          f"{ROUNDS} rounds)")


if __name__ == "__main__":
    main()
