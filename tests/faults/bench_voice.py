"""What the diversion of our threads' records costs the application's logging path (issue 11).

    .venv/bin/python tests/faults/bench_voice.py

``crossbridge_otel._voice.install()`` wraps ``logging.Logger.handle``: every record the application logs (above its
logger's level: records below it never reach ``handle``) pays one more Python call and one thread-local read.
Interleaved rounds of the same ``logger.info`` to a handler that does nothing, stdlib vs wrapped; prints the medians
and the difference in nanoseconds per record.
"""

from __future__ import annotations

import logging
import statistics
import time

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
          f"(+{w - p:.0f} ns per record)")


if __name__ == "__main__":
    main()
