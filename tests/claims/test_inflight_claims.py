"""Telemetry in flight: the collector dies in the middle of a batch, a process forks while a batch is out.

Real processes under the .venv's ``opentelemetry-instrument`` (production mode: ``CROSSBRIDGE_OTEL_STRICT=false``)
run real CrossBridge work (tests/claims/inflight_workload.py) and export OTLP/HTTP to a real receiver on
127.0.0.1 (tests/claims/dying_collector.py). The accounting the README promises: every span and log record a
process created was delivered once or is in the count of its exit line (``dropped N spans and M log records``).

No sleeps and no timing: the collector signals the moment (died with half a request read, holding a request), the
test awaits it and answers the workload on its stdin, and the outcome of each case is fixed by configuration.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from dying_collector import DyingCollector
from support.crossbridge_target import REPO, crossbridge_env

WORKLOAD = Path(__file__).with_name("inflight_workload.py")
INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"
HANG_GUARD_S = 90.0  # a moment that never comes is a failure, reported; not a timing assumption
# Long enough that the exit flush never gives up on an export the collector will still take (the restarted
# collector, a held request): the cases below are decided by what the collector does, not by a race with it.
NO_DEADLINE = "60"


def _start(mode: str, collector: DyingCollector, export_timeout: str | None = None,
           **extra: str) -> subprocess.Popen[str]:
    env = crossbridge_env()
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
               OTEL_METRICS_EXPORTER="none", CROSSBRIDGE_OTEL_STRICT="false", **extra)
    if export_timeout is not None:
        env["CROSSBRIDGE_OTEL_EXPORT_TIMEOUT"] = export_timeout
    return subprocess.Popen([str(INSTRUMENT), sys.executable, str(WORKLOAD), mode], env=env, cwd=str(REPO),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _await(proc: subprocess.Popen[str], event, what: str) -> None:
    """Wait for ``event`` (set by the collector); the workload ending first or a hang fails the test."""
    if not event.wait(HANG_GUARD_S):
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"{what} never happened (workload exit {proc.returncode}):\n{err}")


def _go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def _finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 0, err
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _created(stdout: str) -> dict[int, dict[str, int]]:
    rows = [json.loads(line.split(" ", 1)[1]) for line in stdout.splitlines() if line.startswith("CREATED ")]
    return {row["pid"]: row for row in rows}


def _reported_dropped(stderr: str) -> dict[str, int]:
    """What the exit line(s) say were dropped (summed over processes; no line: nothing)."""
    dropped = {"spans": 0, "logs": 0}
    for line in stderr.splitlines():
        if "dropped" in line:
            spans = re.search(r"(\d+) spans?\b", line)
            logs = re.search(r"(\d+) log records?\b", line)
            dropped["spans"] += int(spans.group(1)) if spans else 0
            dropped["logs"] += int(logs.group(1)) if logs else 0
    return dropped


def _ids(collector: DyingCollector, pid: int | None = None) -> tuple[Counter[bytes], Counter[str]]:
    """Delivered span ids and log bodies (each numbered by the workload), per count, for ``pid`` or all."""
    spans = Counter(span.span_id for resource, span in collector.spans if pid in (None, resource["process.pid"]))
    logs = Counter(record.body.string_value for resource, record in collector.logs
                   if pid in (None, resource["process.pid"]) and "claims-log" in record.body.string_value)
    return spans, logs


def _duplicates(counter: Counter) -> int:
    return sum(n - 1 for n in counter.values() if n > 1)


_SIGNAL = {"/v1/traces": "TRACES", "/v1/logs": "LOGS"}


@pytest.mark.parametrize("fate", ["restarted", "gone", "given-up"])
@pytest.mark.parametrize("path", ["/v1/traces", "/v1/logs"], ids=["spans", "log-records"])
def test_collector_dying_mid_batch_loses_nothing_unreported(path: str, fate: str) -> None:
    """Created = delivered + reported dropped (spans, log records), no duplicates, when the collector dies mid-batch."""
    # Each fate is fixed by configuration, not by a race:
    # - restarted (no exit deadline; exporters' timeout 45 s, so retries at 1, 3, 7, 15, 31 s): the exporter re-sends
    #   the cut batch to the restarted collector, nothing is dropped;
    # - gone (the default exit deadline, 1.5 s, far inside the exporter's 10 s of retries): the cut batch is still
    #   being retried at exit, abandoned and counted;
    # - given-up (that signal's exporter timeout 0.5 s, below its first 0.8-1.2 s backoff; no exit deadline): each
    #   of its exports fails and is counted.
    extra = {"restarted": {"OTEL_EXPORTER_OTLP_TIMEOUT": "45"},
             "given-up": {f"OTEL_EXPORTER_OTLP_{_SIGNAL[path]}_TIMEOUT": "0.5"}}.get(fate, {})
    with DyingCollector(die_on=path) as collector:
        proc = _start("collector", collector, export_timeout=None if fate == "gone" else NO_DEADLINE, **extra)
        _await(proc, collector.died, "the collector's death in the middle of a request")
        if fate == "restarted":
            collector.revive()
        _go(proc)  # the workload's second phase runs after the death (and the restart)
        done = _finish(proc)
    assert collector.deaths == [path]
    (created,) = _created(done.stdout).values()
    dropped = _reported_dropped(done.stderr)
    spans, logs = _ids(collector)
    record_bodies = [record.body.string_value for _, record in collector.logs]
    log_created = created["logs"] - sum(1 for body in record_bodies if "claims-log" not in body)
    summary = f"created {created}, delivered {len(spans)} spans / {len(logs)} logs, dropped {dropped}\n{done.stderr}"
    assert _duplicates(spans) == 0 and _duplicates(logs) == 0, summary
    assert created["spans"] == len(spans) + dropped["spans"], summary
    assert created["logs"] == len(record_bodies) + dropped["logs"] and log_created >= len(logs), summary
    kind = "spans" if path == "/v1/traces" else "logs"
    if fate == "restarted":
        assert dropped == {"spans": 0, "logs": 0}, summary  # the cut batch was re-sent, nothing lost
    else:
        assert dropped[kind] == created[kind] > 0, summary  # nothing of it arrived after the death


def _fork_run(mode: str, hold_nth: int) -> None:
    with DyingCollector(hold_nth=hold_nth) as collector:
        proc = _start(mode, collector, export_timeout=NO_DEADLINE)
        if mode == "fork":
            _await(proc, collector.held, "the held span export")
            _go(proc)  # the workload forks while the collector holds its batch
        assert proc.stdout is not None
        guard = threading.Timer(HANG_GUARD_S, proc.kill)  # a hung workload ends the readline below
        guard.start()
        lines = []
        try:
            while (line := proc.stdout.readline()) and not line.startswith("FORKED "):
                lines.append(line)
        finally:
            guard.cancel()
        collector.release()  # the fork happened (or the workload ended): the held export may complete
        done = _finish(proc)
    done.stdout = "".join(lines) + line + done.stdout
    forked = re.search(r"FORKED child=(\d+) in_flight=(\d+)", done.stdout)
    assert forked and int(forked.group(2)) > 0, f"no batch was in flight at the fork: {done.stdout}"
    child = int(forked.group(1))
    created = _created(done.stdout)
    parent = next(pid for pid in created if pid != child)
    assert set(created) == {parent, child}, done.stdout
    assert _reported_dropped(done.stderr) == {"spans": 0, "logs": 0}, done.stderr
    all_spans, all_logs = _ids(collector)
    assert _duplicates(all_spans) == 0 and _duplicates(all_logs) == 0, "a span or log record was delivered twice"
    resources = {resource["process.pid"]: resource for resource, _ in collector.spans + collector.logs}
    assert set(resources) == {parent, child}, "telemetry arrived under a pid that is neither process"
    assert resources[child]["service.instance.id"] != resources[parent]["service.instance.id"]
    for pid in (parent, child):
        spans, logs = _ids(collector, pid)
        assert _duplicates(spans) == 0 and _duplicates(logs) == 0, f"pid {pid}: {spans}"
        assert len(spans) == created[pid]["spans"], f"pid {pid}: created {created[pid]}, {len(spans)} spans delivered"
        delivered_logs = sum(1 for resource, _ in collector.logs if resource["process.pid"] == pid)
        assert delivered_logs == created[pid]["logs"], f"pid {pid}: created {created[pid]}, {delivered_logs} logs"


def test_fork_during_export_keeps_each_process_whole() -> None:
    """A fork while a span batch is in flight: the child has its own pid and instance id, nothing lost or doubled."""
    _fork_run("fork", hold_nth=2)


def test_fork_during_the_first_export_keeps_the_child_whole() -> None:
    """A fork with the very first batch in flight: the child still delivers everything it creates."""
    _fork_run("fork-early", hold_nth=1)
